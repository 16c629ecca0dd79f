/**
 * Calling hours in the contact's own time zone (an IANA name such as `Europe/Berlin`),
 * computed with `Intl`, so daylight-saving changes are the zone database's business: a
 * window `08:00–21:00` means 08:00 local wall-clock time on every day, whatever the
 * offset that day. Windows may wrap midnight (`22:00–06:00`). Pure functions.
 */

/** An allowed window of local wall-clock time, `HH:MM` or `HH:MM:SS`, start inclusive, end exclusive. */
export interface Window {
  readonly start: string
  readonly end: string
}

/** The default: 08:00 to 21:00 local time. */
export const defaultWindow: Window = { start: "08:00", end: "21:00" }

const formatters = new Map<string, Intl.DateTimeFormat>()

/** Whether `zone` is an IANA time zone this runtime knows. */
export const isValidZone = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone })
    return true
  } catch {
    return false
  }
}

const formatter = (zone: string): Intl.DateTimeFormat => {
  let f = formatters.get(zone)
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit"
    })
    formatters.set(zone, f)
  }
  return f
}

/** Local calendar fields of instant `at` (epoch ms) in `zone`. */
export interface LocalTime {
  readonly year: number
  readonly month: number
  readonly day: number
  readonly hour: number
  readonly minute: number
  readonly second: number
}

/** The local wall-clock time of an instant in a zone (unknown zones read as UTC). */
export const local = (at: number, zone: string): LocalTime => {
  const parts = formatter(isValidZone(zone) ? zone : "UTC").formatToParts(new Date(at))
  const get = (t: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === t)?.value ?? 0)
  return { year: get("year"), month: get("month"), day: get("day"), hour: get("hour") % 24, minute: get("minute"), second: get("second") }
}

/** The zone's offset from UTC at instant `at`, in ms (local = UTC + offset). */
export const offsetAt = (at: number, zone: string): number => {
  const l = local(at, zone)
  const asUtc = Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute, l.second)
  return asUtc - Math.floor(at / 1000) * 1000
}

/** Seconds since local midnight of a `HH:MM[:SS]` string. */
export const secondsOf = (hhmm: string): number => {
  const [h = "0", m = "0", s = "0"] = hhmm.split(":")
  return Number(h) * 3600 + Number(m) * 60 + Number(s)
}

/**
 * The instant at which the local wall clock in `zone` shows the given date and time. In a
 * spring-forward gap (a local time that does not exist) it is the first instant after it.
 */
export const instantOf = (zone: string, y: number, mo: number, d: number, seconds: number): number => {
  const wall = Date.UTC(y, mo - 1, d) + seconds * 1000
  let guess = wall - offsetAt(wall, zone)
  guess = wall - offsetAt(guess, zone)
  const back = local(guess, zone)
  const shown = Date.UTC(back.year, back.month - 1, back.day, back.hour, back.minute, back.second)
  // the wall time does not exist (gap): move forward by the missing amount
  return shown < wall ? guess + (wall - shown) : guess
}

const inWindow = (seconds: number, w: Window): boolean => {
  const s = secondsOf(w.start)
  const e = secondsOf(w.end)
  return s <= e ? seconds >= s && seconds < e : seconds >= s || seconds < e
}

/** Whether instant `at` falls in the window, in the contact's zone. */
export const isAllowed = (at: number, zone: string, w: Window = defaultWindow): boolean => {
  const l = local(at, zone)
  return inWindow(l.hour * 3600 + l.minute * 60 + l.second, w)
}

/** The first instant at or after `at` inside the window, in the contact's zone. */
export const nextAllowed = (at: number, zone: string, w: Window = defaultWindow): number => {
  if (isAllowed(at, zone, w)) return at
  const z = isValidZone(zone) ? zone : "UTC"
  const l = local(at, z)
  const start = secondsOf(w.start)
  // today's opening if it is still ahead, else tomorrow's (calendar arithmetic in UTC fields)
  for (let days = 0; days <= 2; days++) {
    const date = new Date(Date.UTC(l.year, l.month - 1, l.day + days))
    const candidate = instantOf(z, date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), start)
    if (candidate > at) return candidate
  }
  return at + 24 * 3600 * 1000
}
