// The board's service worker: makes the board an installable app that opens without the
// network, and shows Web Push notifications for calls while the board is in the background.
//
// It caches the static shell only (pages, scripts, styles, icons) and NEVER anything under
// /api/ or the WebSocket: a cached alert list or health answer would show a calm, stale
// night. API requests are not even intercepted (no respondWith), so the browser sends them
// to the server exactly as without a worker. The shell is fetched from the network first
// (a new version of the board arrives at once) and served from the cache only when the
// server cannot be reached, so the board can still say that it cannot reach the server.

const CACHE = "nattero-shell-v2";
const SHELL = [
  "/", "/index.html", "/login.html", "/manifest.webmanifest",
  "/css/board.css",
  "/js/board.js", "/js/api.js", "/js/stream.js", "/js/i18n.js", "/js/sound.js",
  "/js/floor.js", "/js/health.js", "/js/login.js", "/js/pwa.js", "/js/rounds.js", "/js/shift.js",
  "/img/icon-192.png", "/img/icon-512.png",
];

function isShell(url) {
  if (url.origin !== self.location.origin) return false;
  if (url.pathname.startsWith("/api/")) return false; // never: live data only
  return SHELL.includes(url.pathname) || /^\/(js|css|img)\//.test(url.pathname) ||
    /^\/[a-z]+\.html$/.test(url.pathname);
}

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isShell(url)) return; // the API and anything else: straight to the network
  event.respondWith((async () => {
    // The query (e.g. ?fault_after=) does not change the file.
    const key = url.origin + url.pathname;
    try {
      const response = await fetch(request);
      if (response.ok) {
        const cache = await caches.open(CACHE);
        await cache.put(key, response.clone());
      }
      return response;
    } catch (error) {
      const cached = await caches.match(key);
      if (cached) return cached;
      throw error;
    }
  })());
});

// A push from Nattero (api/push.py): {"title": ..., "body": ..., "alert": id, "site": ...,
// "room": ..., "rule": ..., "tag": ...}. Every push shows a notification: a call must be
// seen and heard even when the board is behind another app.
self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = { title: "Nattero", body: event.data ? event.data.text() : "" };
  }
  const title = message.title || "Nattero";
  event.waitUntil(self.registration.showNotification(title, {
    body: message.body || "",
    tag: message.tag || undefined,
    renotify: Boolean(message.tag),
    requireInteraction: true,
    icon: "/img/icon-192.png",
    lang: "da",
    data: message,
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const board = open.find((client) => new URL(client.url).pathname === "/");
    if (board) return board.focus();
    return self.clients.openWindow("/");
  })());
});
