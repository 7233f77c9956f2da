// The live alert stream: one WebSocket that reconnects by itself and never loses a change.
//
// On reconnect it asks for `since=<last seq seen>`, so the server replays what the board
// missed while it was away. The token goes in the first message, never in the URL (URLs
// end up in server and proxy logs). A ping arrives every 10 s; if nothing at all arrives for
// WATCHDOG_MS the socket is treated as dead even if the browser has not noticed (a
// half-open TCP connection on a sleeping tablet looks exactly like a quiet night).

import { authMessage, streamUrl, goToLogin, enrolledBoard, renewBoardToken } from "./api.js";

const WATCHDOG_MS = 25_000;
const BACKOFF_MS = [500, 1000, 2000, 3000, 5000];

export class AlertStream extends EventTarget {
  constructor() {
    super();
    this.seq = null;          // last seq applied; null until the first hello
    this.state = "connecting"; // connecting | live | down
    this.downSince = null;
    this.lastMessageAt = null;
    this._socket = null;
    this._attempt = 0;
    this._watchdog = null;
    this._retry = null;
    this._stopped = false;
  }

  start() {
    this._stopped = false;
    this._connect();
    // A tablet waking from sleep: check at once instead of waiting for the watchdog.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this._checkAlive();
    });
    window.addEventListener("online", () => this._reconnectNow());
  }

  stop() {
    this._stopped = true;
    clearTimeout(this._retry);
    clearTimeout(this._watchdog);
    if (this._socket) this._socket.close(1000);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state) {
    if (state === this.state) return;
    if (state === "down" && this.downSince === null) this.downSince = new Date().toISOString();
    if (state === "live") this.downSince = null;
    this.state = state;
    this._emit("status", { state, downSince: this.downSince });
  }

  _connect() {
    clearTimeout(this._retry);
    let socket;
    try {
      socket = new WebSocket(streamUrl(this.seq));
    } catch (error) {
      console.error("nattero stream: cannot open WebSocket", error);
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.addEventListener("open", () => socket.send(authMessage()));
    socket.addEventListener("message", (event) => this._onMessage(socket, event));
    socket.addEventListener("close", (event) => this._onClose(socket, event));
    socket.addEventListener("error", () => { /* a close event follows; handled there */ });
    this._armWatchdog();
  }

  _onMessage(socket, event) {
    if (socket !== this._socket) return;
    this.lastMessageAt = Date.now();
    this._armWatchdog();
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      console.error("nattero stream: unreadable message", event.data, error);
      return;
    }
    switch (message.type) {
      case "hello":
        this._attempt = 0;
        this._setState("live");
        this._emit("hello", message);
        break;
      case "snapshot":
        this.seq = message.seq;
        this._emit("snapshot", message);
        break;
      case "change":
        if (this.seq !== null && message.seq <= this.seq) return; // replayed twice
        this.seq = message.seq;
        this._emit("change", message);
        break;
      case "ping":
        // The server vouches that nothing visible to us happened up to here.
        if (this.seq === null || message.seq > this.seq) this.seq = message.seq;
        this._emit("ping", message);
        break;
      default:
        console.warn("nattero stream: unknown message type", message.type);
    }
  }

  _onClose(socket, event) {
    if (socket !== this._socket) return;
    this._socket = null;
    clearTimeout(this._watchdog);
    if (event.code === 4401) {
      if (!enrolledBoard()) {
        goToLogin("expired");
        return;
      }
      // An enrolled board: renew its token and come back, unless it was revoked.
      this._setState("down");
      renewBoardToken().then((renewed) => {
        if (renewed) this._scheduleReconnect();
        else goToLogin("revoked");
      }, () => this._scheduleReconnect());
      return;
    }
    if (event.code === 4403) {
      this._setState("down");
      this._emit("forbidden", event);
      return;
    }
    if (this._stopped) return;
    this._setState("down");
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (this._stopped) return;
    const delay = BACKOFF_MS[Math.min(this._attempt, BACKOFF_MS.length - 1)];
    this._attempt += 1;
    clearTimeout(this._retry);
    this._retry = setTimeout(() => this._connect(), delay);
  }

  _reconnectNow() {
    if (this.state === "live") return;
    this._attempt = 0;
    clearTimeout(this._retry);
    if (!this._socket) this._connect();
  }

  _armWatchdog() {
    clearTimeout(this._watchdog);
    this._watchdog = setTimeout(() => this._checkAlive(), WATCHDOG_MS);
  }

  _checkAlive() {
    if (!this._socket) return this._reconnectNow();
    if (this.lastMessageAt !== null && Date.now() - this.lastMessageAt < WATCHDOG_MS) return;
    // Silence longer than the ping interval allows: the socket is dead, whatever it says.
    const socket = this._socket;
    this._socket = null;
    try { socket.close(); } catch { /* already closing */ }
    this._setState("down");
    this._scheduleReconnect();
  }
}
