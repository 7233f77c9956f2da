// The one translation catalogue of the board and admin pages: Danish first, English second.
// Every string a person reads comes from here; markup carries `data-i18n` keys only.

const CATALOGUE = {
  da: {
    "app.name": "Nattero",
    "app.board": "Nattavle",
    "app.admin": "Administration",
    "lang.switch": "English",
    "lang.switch.label": "Switch to English",

    "login.title": "Log ind",
    "login.username": "Brugernavn",
    "login.password": "Adgangskode",
    "login.submit": "Log ind",
    "login.busy": "Logger ind…",
    "login.failed": "Forkert brugernavn eller adgangskode.",
    "login.locked": "For mange forsøg. Vent lidt, og prøv igen.",
    "login.missing": "Udfyld brugernavn og adgangskode.",
    "login.unreachable": "Kan ikke nå serveren. Tjek netværket, og prøv igen.",
    "login.expired": "Du er blevet logget ud. Log ind igen.",
    "logout": "Log ud",

    "board.alerts": "Alarmer",
    "board.quiet": "Ingen åbne alarmer",
    "board.quiet.detail": "Systemet kører, og der er ingen alarmer lige nu.",
    "board.recent": "Afsluttet for nylig",
    "board.notices": "Vedligehold",
    "board.situations": "Stille situationer",
    "board.situations.detail": "Følges af systemet. Bliver til en alarm, hvis den tilladte tid går.",
    "board.site.all": "Alle steder",
    "board.floor": "Oversigt over rum",
    "board.preshift": "Vagtstart-tjek",
    "board.loading": "Henter…",
    "board.no_sites": "Din bruger har ikke adgang til nogen steder. Kontakt en administrator.",

    "severity.notice": "Besked",
    "severity.normal": "Alarm",
    "severity.high": "Høj alarm",

    "rule.left_flat": "Har forladt lejligheden",
    "rule.bed_exit_not_back": "Ude af sengen, ikke tilbage",
    "rule.common_motion": "Bevægelse i fællesrum",
    "rule.building_exit": "Yderdør åbnet",
    "rule.sensor_offline": "Sensor offline",
    "rule.low_battery": "Lavt batteri",

    "status.open": "Ny",
    "status.acknowledged": "Taget af {who}",
    "status.resolved": "Afsluttet af {who}",
    "status.escalated": "Eskaleret",
    "status.late": "Forsinket data",
    "status.count": "{n} gange",

    "ago.now": "lige nu",
    "ago.seconds": "for {n} s siden",
    "ago.minutes": "for {n} min siden",
    "ago.hours": "for {h} t {m} min siden",
    "ago.days": "for {n} døgn siden",
    "ago.never": "aldrig",

    "action.ack": "Jeg tager den",
    "action.resolve": "Færdig",
    "action.cancel": "Annullér",
    "action.close": "Luk",
    "action.retry": "Prøv igen",
    "action.failed": "Handlingen mislykkedes: {reason}",
    "action.conflict": "En anden har allerede håndteret alarmen.",

    "resolve.title": "Afslut alarm",
    "resolve.question": "Hvad skete der?",
    "resolve.note": "Bemærkning (valgfri)",
    "outcome.help_given": "Hjælp givet",
    "outcome.no_action_needed": "Ingen handling nødvendig",
    "outcome.false_alarm": "Falsk alarm",
    "outcome.cleared_automatically": "Ophørt af sig selv",

    "sound.enable": "Slå lyd til",
    "sound.enable.why": "Browseren spiller først lyd, når du har trykket her.",
    "sound.on": "Lyd til",
    "sound.mute": "Lyd fra i 15 min",
    "sound.muted": "Lyd fra til {time}",
    "sound.unmute": "Slå lyd til igen",
    "sound.muted.note": "Eskalerede alarmer lyder stadig.",

    "health.ok": "Systemet kører · sidste data {ago}",
    "health.ok.nodata": "Systemet kører",
    "health.connecting": "Forbinder til serveren…",
    "health.down": "Forbindelsen til serveren er afbrudt siden {time}. Prøver igen automatisk. Nye alarmer kan mangle, indtil forbindelsen er tilbage.",
    "health.silent": "Ingen data fra {site} siden {time} ({ago}). Sensorer eller netværk virker muligvis ikke – gå runde.",
    "health.silent.never": "Ingen data er nogensinde modtaget fra {site}.",
    "health.offline": "{n} sensor(er) offline eller tavse på {site}: {rooms}",
    "health.connected": "Forbundet til serveren – men se advarslen ovenfor",
    "health.lowbattery": "{n} sensor(er) med lavt batteri på {site}: {rooms}",
    "health.unknown": "Kan ikke hente systemstatus for {site}.",

    "floor.flat": "Lejlighed",
    "floor.common": "Fællesrum",
    "floor.exit": "Udgang",
    "state.quiet": "Roligt",
    "state.out": "Beboer ude",
    "state.activity": "Aktivitet",
    "state.alert": "Alarm",
    "state.offline": "Sensor offline",
    "state.low_battery": "Lavt batteri",
    "state.not_monitored": "Ikke overvåget",
    "state.no_sensor": "Ingen sensor",

    "preshift.title": "Vagtstart-tjek",
    "preshift.intro": "Disse rum er ikke fuldt dækket i nat:",
    "preshift.all_ok": "Alle sensorer er online og har strøm. God vagt.",
    "preshift.offline": "Offline",
    "preshift.silent": "Tavs siden {time}",
    "preshift.low_battery": "Batteri {n} %",
    "preshift.not_monitored": "Ikke overvåget (intet grundlag)",
    "preshift.checked": "Tjekket {time}",

    "announce.new": "Ny alarm: {room}, {what}",
    "announce.escalated": "Eskaleret: {room}, {what}",

    "admin.sites": "Steder",
    "admin.rooms": "Rum",
    "admin.devices": "Sensorer",
    "admin.rules": "Regler",
    "admin.users": "Brugere",
    "admin.forbidden": "Kun administratorer har adgang til denne side.",
    "admin.site": "Sted",
    "admin.save": "Gem",
    "admin.add": "Tilføj",
    "admin.saved": "Gemt.",
    "admin.error": "Kunne ikke gemme: {reason}",
    "admin.required": "Skal udfyldes.",
    "admin.invalid": "Ugyldig værdi.",
    "admin.slug": "Kun små bogstaver, tal og bindestreg (a-z, 0-9, -).",
    "admin.time": "Skriv tid som TT:MM.",
    "admin.empty": "Ingen endnu.",
    "admin.loading": "Henter…",

    "site.id": "Id",
    "site.name": "Navn",
    "site.tz": "Tidszone",
    "site.night_start": "Nat starter",
    "site.night_end": "Nat slutter",
    "site.add": "Tilføj sted",

    "room.id": "Id",
    "room.kind": "Type",
    "room.label": "Betegnelse (aldrig et navn)",
    "room.monitored": "Overvåget",
    "room.add": "Tilføj rum",
    "room.basis": "Grundlag",
    "room.basis.consent": "Samtykke",
    "room.basis.decision": "Afgørelse",
    "room.basis.reference": "Reference",
    "room.basis.valid_from": "Gyldig fra",
    "room.basis.valid_to": "Gyldig til",
    "room.basis.save": "Registrér grundlag",
    "yes": "Ja",
    "no": "Nej",

    "device.id": "Id",
    "device.room": "Rum",
    "device.kind": "Type",
    "device.heartbeat": "Hjerteslag (sekunder)",
    "device.presence": "Status",
    "device.battery": "Batteri",
    "device.last_event": "Seneste data",
    "device.add": "Tilføj sensor",
    "device.revoke": "Tilbagekald",
    "device.revoke.confirm": "Tilbagekald sensor {id}? Den kan ikke længere sende data.",
    "device.revoked": "Tilbagekaldt",
    "device.credentials": "MQTT-adgang til {id}",
    "device.credentials.once": "Vises kun denne ene gang. Skriv det ned eller kopiér det nu.",
    "device.username": "Brugernavn",
    "device.client_id": "Klient-id (enheden skal forbinde med præcis dette)",
    "device.password": "Adgangskode",
    "device.online": "Online",
    "device.offline": "Offline",
    "device.unknown": "Ukendt",
    "kind.door": "Dør",
    "kind.bed": "Seng",
    "kind.motion": "Bevægelse",
    "kind.exit": "Yderdør",

    "rules.rule": "Regel",
    "rules.room": "Rum (tom = hele stedet)",
    "rules.enabled": "Aktiv",
    "rules.minutes": "Minutter",
    "rules.severity": "Alvor",
    "rules.whole_site": "Hele stedet",
    "rules.default": "Standard",

    "user.username": "Brugernavn",
    "user.password": "Adgangskode",
    "user.role": "Rolle",
    "user.sites": "Steder",
    "user.add": "Tilføj bruger",
    "role.admin": "Administrator",
    "role.staff": "Personale",
    "role.evaluator": "Evaluator",
    "app.evaluator": "Evaluering",
    "app.handover": "Overlevering",
    "ev.title": "Evaluering af piloten",
    "ev.intro": "Anonyme data om nattero og personaletid. Der vises aldrig navne, rumbetegnelser eller sensor-id'er.",
    "ev.forbidden": "Denne side er kun for evaluatorer og administratorer. Du er logget ind som {role}.",
    "ev.forbidden.board": "Gå til nattavlen",
    "ev.from_board": "Som evaluator har du ikke adgang til nattavlen med live-data. Her er evalueringssiden.",
    "ev.scope": "Sted og periode",
    "ev.site": "Sted",
    "ev.site.typed": "Sted-id",
    "ev.site.typed.hint": "Stederne kunne ikke hentes. Skriv stedets id (fx solsikken).",
    "ev.from": "Fra (dato)",
    "ev.to": "Til (dato, inklusive)",
    "ev.period.hint": "Standard er de seneste 30 dage. En nat hører til datoen for aftenen. Kun nætter, der er slut, kan eksporteres.",
    "ev.period.invalid": "Fra-datoen skal ligge før eller på til-datoen.",
    "ev.site.missing": "Vælg eller skriv et sted.",
    "ev.export": "Eksport af belægning",
    "ev.bucket": "Tidsinterval",
    "ev.bucket.15m": "15 minutter",
    "ev.bucket.1h": "1 time",
    "ev.bucket.1d": "1 døgn",
    "ev.level": "Niveau",
    "ev.level.site": "Hele stedet (samlet)",
    "ev.level.room": "Pr. rum (pseudonymiseret)",
    "ev.reason": "Begrundelse for data pr. rum",
    "ev.reason.hint": "Skrives i auditloggen. Data pr. rum dækker hele kalendermåneder (fx 1.–31. oktober).",
    "ev.reason.missing": "Skriv en begrundelse på mindst 10 tegn for at hente data pr. rum.",
    "ev.format": "Filformat",
    "ev.format.csv": "CSV (ZIP)",
    "ev.format.csv-da": "CSV til dansk Excel (ZIP)",
    "ev.format.parquet": "Parquet",
    "ev.format.xlsx": "Excel (xlsx)",
    "ev.export.download": "Hent eksport",
    "ev.export.busy": "Henter eksport…",
    "ev.export.done": "Hentet: {name} ({size}).",
    "ev.manifest.zip": "Manifestet (manifest.json) ligger i ZIP-filen ved siden af occupancy.csv.",
    "ev.manifest.parquet": "Manifestet ligger i filens metadata (nattero.manifest).",
    "ev.manifest.xlsx": "Manifestet ligger på arket »manifest«.",
    "ev.report": "Gevinstrapport",
    "ev.assumptions": "Antagelser om personaletid",
    "ev.assumptions.hint": "Tallene er antagelser, ikke målinger. De står i rapporten ved siden af resultatet.",
    "ev.rounds_per_night": "Runder pr. nat før piloten",
    "ev.minutes_per_check": "Minutter pr. tilsyn i en lejlighed",
    "ev.handling_minutes": "Minutter pr. alarm (tom = målt)",
    "ev.handling_minutes.hint": "Lad feltet stå tomt for at bruge den målte tid fra kvittering til afslutning.",
    "ev.wake_share": "Andel af tilsyn der vækker en sovende beboer (0–1)",
    "ev.report.show": "Vis gevinstrapport",
    "ev.report.busy": "Henter rapport…",
    "ev.report.pdf": "Hent PDF",
    "ev.report.pdf.busy": "Henter PDF…",
    "ev.report.frame": "Gevinstrapport",
    "ev.report.shown": "Rapporten vises nedenfor.",
    "ev.error": "Det lykkedes ikke: {reason}",
    "ev.error.403": "Du har ikke adgang til dette.",
    "ev.error.404": "Stedet findes ikke.",
    "ev.error.0": "Kan ikke nå serveren. Tjek netværket, og prøv igen.",
    "ev.invalid": "Ugyldig værdi: {detail}",

    "ho.title": "Morgenoverlevering",
    "ho.intro": "Nattens hændelser til dagvagten. Siden indeholder rumbetegnelser: del den kun med personalet.",
    "ho.site": "Sted",
    "ho.night": "Nat (aftenens dato)",
    "ho.night.hint": "Tom: den seneste nat med data.",
    "ho.show": "Vis overlevering",
    "ho.busy": "Henter overlevering…",
    "ho.print": "Udskriv",
    "ho.frame": "Morgenoverlevering",
    "ho.back": "Tilbage til nattavlen",
    "ho.forbidden": "Overleveringen er kun for personale og administratorer.",
    "ho.no_sites": "Din bruger har ikke adgang til nogen steder. Kontakt en administrator.",
    "ho.open": "Overlevering",
    "ho.open.new_tab": " (åbner i en ny fane, så nattavlen kører videre)",
  },
  en: {
    "app.name": "Nattero",
    "app.board": "Night board",
    "app.admin": "Administration",
    "lang.switch": "Dansk",
    "lang.switch.label": "Skift til dansk",

    "login.title": "Sign in",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.busy": "Signing in…",
    "login.failed": "Wrong username or password.",
    "login.locked": "Too many attempts. Wait a little and try again.",
    "login.missing": "Enter username and password.",
    "login.unreachable": "Cannot reach the server. Check the network and try again.",
    "login.expired": "You have been signed out. Sign in again.",
    "logout": "Sign out",

    "board.alerts": "Alerts",
    "board.quiet": "No open alerts",
    "board.quiet.detail": "The system is running and there are no alerts right now.",
    "board.recent": "Recently resolved",
    "board.notices": "Maintenance",
    "board.situations": "Quiet situations",
    "board.situations.detail": "Followed by the system. Becomes an alert if the allowed time passes.",
    "board.site.all": "All sites",
    "board.floor": "Rooms",
    "board.preshift": "Pre-shift check",
    "board.loading": "Loading…",
    "board.no_sites": "Your user has no sites. Ask an administrator.",

    "severity.notice": "Notice",
    "severity.normal": "Alert",
    "severity.high": "High alert",

    "rule.left_flat": "Left the flat",
    "rule.bed_exit_not_back": "Out of bed, not back",
    "rule.common_motion": "Movement in common area",
    "rule.building_exit": "Building exit opened",
    "rule.sensor_offline": "Sensor offline",
    "rule.low_battery": "Low battery",

    "status.open": "New",
    "status.acknowledged": "Taken by {who}",
    "status.resolved": "Resolved by {who}",
    "status.escalated": "Escalated",
    "status.late": "Late data",
    "status.count": "{n} times",

    "ago.now": "just now",
    "ago.seconds": "{n} s ago",
    "ago.minutes": "{n} min ago",
    "ago.hours": "{h} h {m} min ago",
    "ago.days": "{n} days ago",
    "ago.never": "never",

    "action.ack": "I'm on it",
    "action.resolve": "Done",
    "action.cancel": "Cancel",
    "action.close": "Close",
    "action.retry": "Retry",
    "action.failed": "That did not work: {reason}",
    "action.conflict": "Someone else has already handled this alert.",

    "resolve.title": "Resolve alert",
    "resolve.question": "What happened?",
    "resolve.note": "Note (optional)",
    "outcome.help_given": "Help given",
    "outcome.no_action_needed": "No action needed",
    "outcome.false_alarm": "False alarm",
    "outcome.cleared_automatically": "Cleared by itself",

    "sound.enable": "Enable sound",
    "sound.enable.why": "The browser plays sound only after you tap here.",
    "sound.on": "Sound on",
    "sound.mute": "Mute for 15 min",
    "sound.muted": "Muted until {time}",
    "sound.unmute": "Unmute",
    "sound.muted.note": "Escalated alerts still sound.",

    "health.ok": "System running · last data {ago}",
    "health.ok.nodata": "System running",
    "health.connecting": "Connecting to the server…",
    "health.down": "Connection to the server lost since {time}. Retrying automatically. New alerts may be missing until it is back.",
    "health.silent": "No data from {site} since {time} ({ago}). Sensors or network may be down – walk a round.",
    "health.silent.never": "No data has ever arrived from {site}.",
    "health.offline": "{n} sensor(s) offline or silent at {site}: {rooms}",
    "health.connected": "Connected to the server – but see the warning above",
    "health.lowbattery": "{n} sensor(s) low on battery at {site}: {rooms}",
    "health.unknown": "Cannot fetch system status for {site}.",

    "floor.flat": "Flat",
    "floor.common": "Common area",
    "floor.exit": "Exit",
    "state.quiet": "Quiet",
    "state.out": "Resident out",
    "state.activity": "Activity",
    "state.alert": "Alert",
    "state.offline": "Sensor offline",
    "state.low_battery": "Low battery",
    "state.not_monitored": "Not monitored",
    "state.no_sensor": "No sensor",

    "preshift.title": "Pre-shift check",
    "preshift.intro": "These rooms are not fully covered tonight:",
    "preshift.all_ok": "All sensors are online and powered. Have a good shift.",
    "preshift.offline": "Offline",
    "preshift.silent": "Silent since {time}",
    "preshift.low_battery": "Battery {n} %",
    "preshift.not_monitored": "Not monitored (no basis)",
    "preshift.checked": "Checked {time}",

    "announce.new": "New alert: {room}, {what}",
    "announce.escalated": "Escalated: {room}, {what}",

    "admin.sites": "Sites",
    "admin.rooms": "Rooms",
    "admin.devices": "Devices",
    "admin.rules": "Rules",
    "admin.users": "Users",
    "admin.forbidden": "Only administrators can use this page.",
    "admin.site": "Site",
    "admin.save": "Save",
    "admin.add": "Add",
    "admin.saved": "Saved.",
    "admin.error": "Could not save: {reason}",
    "admin.required": "Required.",
    "admin.invalid": "Invalid value.",
    "admin.slug": "Lower-case letters, digits and dashes only (a-z, 0-9, -).",
    "admin.time": "Write the time as HH:MM.",
    "admin.empty": "None yet.",
    "admin.loading": "Loading…",

    "site.id": "Id",
    "site.name": "Name",
    "site.tz": "Time zone",
    "site.night_start": "Night starts",
    "site.night_end": "Night ends",
    "site.add": "Add site",

    "room.id": "Id",
    "room.kind": "Kind",
    "room.label": "Label (never a name)",
    "room.monitored": "Monitored",
    "room.add": "Add room",
    "room.basis": "Basis",
    "room.basis.consent": "Consent",
    "room.basis.decision": "Decision",
    "room.basis.reference": "Reference",
    "room.basis.valid_from": "Valid from",
    "room.basis.valid_to": "Valid to",
    "room.basis.save": "Record basis",
    "yes": "Yes",
    "no": "No",

    "device.id": "Id",
    "device.room": "Room",
    "device.kind": "Kind",
    "device.heartbeat": "Heartbeat (seconds)",
    "device.presence": "Status",
    "device.battery": "Battery",
    "device.last_event": "Last data",
    "device.add": "Add device",
    "device.revoke": "Revoke",
    "device.revoke.confirm": "Revoke device {id}? It will no longer be able to send data.",
    "device.revoked": "Revoked",
    "device.credentials": "MQTT credentials for {id}",
    "device.credentials.once": "Shown only this once. Write it down or copy it now.",
    "device.username": "Username",
    "device.client_id": "Client id (the device must connect with exactly this)",
    "device.password": "Password",
    "device.online": "Online",
    "device.offline": "Offline",
    "device.unknown": "Unknown",
    "kind.door": "Door",
    "kind.bed": "Bed",
    "kind.motion": "Motion",
    "kind.exit": "Building exit",

    "rules.rule": "Rule",
    "rules.room": "Room (empty = whole site)",
    "rules.enabled": "Enabled",
    "rules.minutes": "Minutes",
    "rules.severity": "Severity",
    "rules.whole_site": "Whole site",
    "rules.default": "Default",

    "user.username": "Username",
    "user.password": "Password",
    "user.role": "Role",
    "user.sites": "Sites",
    "user.add": "Add user",
    "role.admin": "Administrator",
    "role.staff": "Staff",
    "role.evaluator": "Evaluator",
    "app.evaluator": "Evaluation",
    "app.handover": "Handover",
    "ev.title": "Pilot evaluation",
    "ev.intro": "Anonymous data on night rest and staff time. Names, room labels and sensor ids are never shown.",
    "ev.forbidden": "This page is for evaluators and administrators only. You are signed in as {role}.",
    "ev.forbidden.board": "Go to the night board",
    "ev.from_board": "As an evaluator you have no access to the live night board. This is the evaluation page.",
    "ev.scope": "Site and period",
    "ev.site": "Site",
    "ev.site.typed": "Site id",
    "ev.site.typed.hint": "The sites could not be loaded. Type the site id (e.g. solsikken).",
    "ev.from": "From (date)",
    "ev.to": "To (date, inclusive)",
    "ev.period.hint": "The default is the last 30 days. A night belongs to the date of its evening. Only nights that have ended can be exported.",
    "ev.period.invalid": "The from date must be on or before the to date.",
    "ev.site.missing": "Choose or type a site.",
    "ev.export": "Occupancy export",
    "ev.bucket": "Time bucket",
    "ev.bucket.15m": "15 minutes",
    "ev.bucket.1h": "1 hour",
    "ev.bucket.1d": "1 day",
    "ev.level": "Level",
    "ev.level.site": "Whole site (aggregate)",
    "ev.level.room": "Per room (pseudonymised)",
    "ev.reason": "Reason for room-level data",
    "ev.reason.hint": "Written to the audit log. Room-level data cover whole calendar months (e.g. 1–31 October).",
    "ev.reason.missing": "Give a reason of at least 10 characters to download room-level data.",
    "ev.format": "File format",
    "ev.format.csv": "CSV (ZIP)",
    "ev.format.csv-da": "CSV for Danish Excel (ZIP)",
    "ev.format.parquet": "Parquet",
    "ev.format.xlsx": "Excel (xlsx)",
    "ev.export.download": "Download export",
    "ev.export.busy": "Downloading export…",
    "ev.export.done": "Downloaded: {name} ({size}).",
    "ev.manifest.zip": "The manifest (manifest.json) is inside the ZIP file, next to occupancy.csv.",
    "ev.manifest.parquet": "The manifest is in the file's metadata (nattero.manifest).",
    "ev.manifest.xlsx": "The manifest is on the sheet \"manifest\".",
    "ev.report": "Benefit report",
    "ev.assumptions": "Staff-time assumptions",
    "ev.assumptions.hint": "These numbers are assumptions, not measurements. The report prints them beside the result.",
    "ev.rounds_per_night": "Rounds per night before the pilot",
    "ev.minutes_per_check": "Minutes per check of one flat",
    "ev.handling_minutes": "Minutes per alert (empty = measured)",
    "ev.handling_minutes.hint": "Leave empty to use the measured time from acknowledge to resolve.",
    "ev.wake_share": "Share of checks that wake a sleeping resident (0–1)",
    "ev.report.show": "Show benefit report",
    "ev.report.busy": "Loading report…",
    "ev.report.pdf": "Download PDF",
    "ev.report.pdf.busy": "Downloading PDF…",
    "ev.report.frame": "Benefit report",
    "ev.report.shown": "The report is shown below.",
    "ev.error": "That did not work: {reason}",
    "ev.error.403": "You do not have access to this.",
    "ev.error.404": "The site does not exist.",
    "ev.error.0": "Cannot reach the server. Check the network and try again.",
    "ev.invalid": "Invalid value: {detail}",

    "ho.title": "Morning handover",
    "ho.intro": "The night's events for the day shift. This page shows room labels: share it with staff only.",
    "ho.site": "Site",
    "ho.night": "Night (evening date)",
    "ho.night.hint": "Empty: the latest night with data.",
    "ho.show": "Show handover",
    "ho.busy": "Loading handover…",
    "ho.print": "Print",
    "ho.frame": "Morning handover",
    "ho.back": "Back to the night board",
    "ho.forbidden": "The handover is for staff and administrators only.",
    "ho.no_sites": "Your account has no sites. Ask an administrator.",
    "ho.open": "Handover",
    "ho.open.new_tab": " (opens in a new tab, so the night board keeps running)",
  },
};

export const LANGUAGES = Object.keys(CATALOGUE);
const STORAGE_KEY = "nattero.lang";

let current = pickLanguage();

function pickLanguage() {
  const url = new URLSearchParams(location.search).get("lang");
  const stored = localStorage.getItem(STORAGE_KEY);
  for (const candidate of [url, stored]) {
    if (candidate && CATALOGUE[candidate]) return candidate;
  }
  return "da"; // Danish by default, whatever the browser says: the staff are Danish
}

export function language() {
  return current;
}

export function setLanguage(lang) {
  if (!CATALOGUE[lang]) throw new Error(`unknown language '${lang}'; use one of ${LANGUAGES}`);
  current = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
  translatePage();
  document.dispatchEvent(new CustomEvent("nattero:language", { detail: lang }));
}

/** The text for `key` in the current language, with `{name}` placeholders filled. */
export function t(key, params = {}) {
  const text = CATALOGUE[current][key] ?? CATALOGUE.da[key];
  if (text === undefined) {
    console.warn(`nattero i18n: missing key '${key}'`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

export function has(key) {
  return key in CATALOGUE[current];
}

/** Fill every `data-i18n` (text), `data-i18n-label` (aria-label) and `data-i18n-placeholder`. */
export function translatePage(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

/** Wire a language toggle button: it shows the *other* language's name. */
export function bindLanguageToggle(button) {
  const render = () => {
    button.textContent = t("lang.switch");
    button.setAttribute("aria-label", t("lang.switch.label"));
    button.lang = current === "da" ? "en" : "da";
  };
  button.addEventListener("click", () => {
    setLanguage(current === "da" ? "en" : "da");
  });
  document.addEventListener("nattero:language", render);
  render();
}

export function formatAgo(iso, now = Date.now()) {
  if (!iso) return t("ago.never");
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 10) return t("ago.now");
  if (seconds < 60) return t("ago.seconds", { n: seconds });
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return t("ago.minutes", { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return t("ago.hours", { h: hours, m: minutes % 60 });
  return t("ago.days", { n: Math.floor(hours / 24) });
}

export function formatClock(iso, timeZone) {
  if (!iso) return "–";
  const locale = current === "da" ? "da-DK" : "en-GB";
  const options = { hour: "2-digit", minute: "2-digit" };
  if (timeZone) options.timeZone = timeZone;
  return new Intl.DateTimeFormat(locale, options).format(new Date(iso));
}
