//! confd's `datetime` (Go's `time.Now()`) and Go's reference-layout
//! formatting (`time.Time.Format`), for `{{ datetime }}`,
//! `{{ (datetime).Format "2006-01-02" }}` and `printf "%v"` of a time.
//!
//! A time travels as a map marked with [`TIME_MARKER`], whose value is the
//! instant in RFC 3339 with nanoseconds and the zone offset. Times are in
//! UTC: confd prints the host's local time, and on hosts set to UTC (the
//! usual case for servers and containers) the two agree; elsewhere the zone
//! and offset differ (see the module table).

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tera::value::{Key, Map};
use tera::{Error, Kwargs, State, TeraResult, Value};

use super::value::{Go, TIME_MARKER, TIME_ZONE_KEY};
use crate::template::data::check_limits;

/// The monotonic reading Go appends to a `time.Now()` it prints (`m=+0.01`)
/// counts from the program's start; here from the first time helper called.
const MONO_KEY: &str = "\u{1}go:mono";

fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// A broken-down instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Days since the Unix epoch, for the weekday.
    days: i64,
    offset: i64,
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Civil {
    /// The local wall clock of `unix_secs` + `nanos` at `offset` seconds east.
    fn from_unix(unix_secs: i64, nanos: u32, offset: i64) -> Civil {
        let local = unix_secs + offset;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            nanos,
            days,
            offset,
        }
    }

    fn yday(&self) -> i64 {
        self.days - days_from_civil(self.year, 1, 1) + 1
    }

    fn weekday(&self) -> usize {
        // 1970-01-01 was a Thursday.
        (self.days + 4).rem_euclid(7) as usize
    }

    fn rfc3339_nano(&self) -> String {
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        push_nanos(&mut out, self.nanos, 9, true, '.');
        if self.offset == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let abs = self.offset.abs();
            out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60));
        }
        out
    }
}

/// Parses what [`Civil::rfc3339_nano`] writes (any RFC 3339 time).
fn parse_rfc3339(text: &str) -> Option<Civil> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)? as u32, num(8, 2)? as u32);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = text.get(start..i)?;
        let mut padded = digits.chars().take(9).collect::<String>();
        while padded.len() < 9 {
            padded.push('0');
        }
        nanos = padded.parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let h = num(i + 1, 2)?;
            let m = num(i + 4, 2)?;
            let o = h * 3600 + m * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let unix = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(Civil::from_unix(unix, nanos, offset))
}

fn push_nanos(out: &mut String, nanos: u32, digits: usize, trim: bool, separator: char) {
    let all = format!("{nanos:09}");
    let mut n = digits.min(9);
    if trim {
        while n > 0 && all.as_bytes()[n - 1] == b'0' {
            n -= 1;
        }
        if n == 0 {
            return;
        }
    }
    out.push(separator);
    out.push_str(&all[..n]);
}

fn civil_of(map: &Map) -> Option<(Civil, &str)> {
    let text = map.get(&Key::Str(TIME_MARKER))?.as_str()?;
    let zone = map
        .get(&Key::Str(TIME_ZONE_KEY))
        .and_then(Value::as_str)
        .unwrap_or("");
    Some((parse_rfc3339(text)?, zone))
}

/// A marked time value for `unix_secs` + `nanos` in UTC.
pub fn time_value(unix_secs: i64, nanos: u32, mono: Option<i64>) -> Value {
    let civil = Civil::from_unix(unix_secs, nanos, 0);
    let mut map = Map::new();
    map.insert(Key::Str(TIME_MARKER), Value::from(civil.rfc3339_nano()));
    map.insert(Key::Str(TIME_ZONE_KEY), Value::from("UTC"));
    if let Some(mono) = mono {
        map.insert(Key::Str(MONO_KEY), Value::from(mono));
    }
    Value::from(map)
}

/// Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`, plus
/// ` m=±s.nnnnnnnnn` for a time read from the clock.
pub fn time_string(map: &Map) -> String {
    let Some((civil, zone)) = civil_of(map) else {
        return String::new();
    };
    let mut out = format_layout(&civil, zone, "2006-01-02 15:04:05.999999999 -0700 MST");
    if let Some(mono) = map.get(&Key::Str(MONO_KEY)).and_then(Value::as_i64) {
        let sign = if mono < 0 { '-' } else { '+' };
        let abs = mono.unsigned_abs();
        out.push_str(&format!(
            " m={sign}{}.{:09}",
            abs / 1_000_000_000,
            abs % 1_000_000_000
        ));
    }
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `appendInt`: at least `width` digits, zero-padded.
fn push_int(out: &mut String, x: i64, width: usize) {
    if x < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", x.unsigned_abs()));
}

fn starts_lower(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_lowercase)
}

/// Go's `Time.Format(layout)`, following `nextStdChunk`'s recognition of the
/// reference layout's elements.
fn format_layout(t: &Civil, zone: &str, layout: &str) -> String {
    let l = layout.as_bytes();
    let mut out = String::with_capacity(layout.len() + 10);
    let mut i = 0;
    let mut literal_start = 0;
    let at = |i: usize, s: &str| l.get(i..i + s.len()) == Some(s.as_bytes());
    while i < l.len() {
        // (length of the element, what to write) when an element starts at i.
        let mut element: Option<(usize, String)> = None;
        let mut lit_extra = 0;
        let mut s = String::new();
        let hour12 = if t.hour.is_multiple_of(12) {
            12
        } else {
            t.hour % 12
        };
        match l[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    element = Some((7, MONTHS[t.month as usize - 1].to_string()));
                } else if !starts_lower(&l[i + 3..]) {
                    element = Some((3, MONTHS[t.month as usize - 1][..3].to_string()));
                }
            }
            b'M' if at(i, "Mon") || at(i, "MST") => {
                if at(i, "Monday") {
                    element = Some((6, DAYS[t.weekday()].to_string()));
                } else if at(i, "Mon") && !starts_lower(&l[i + 3..]) {
                    element = Some((3, DAYS[t.weekday()][..3].to_string()));
                } else if at(i, "MST") {
                    if zone.is_empty() {
                        let zone_minutes = t.offset / 60;
                        s.push(if zone_minutes < 0 { '-' } else { '+' });
                        push_int(&mut s, zone_minutes.abs() / 60, 2);
                        push_int(&mut s, zone_minutes.abs() % 60, 2);
                    } else {
                        s.push_str(zone);
                    }
                    element = Some((3, s.clone()));
                }
            }
            b'0' if l.get(i + 1).is_some_and(|c| (b'1'..=b'6').contains(c)) => {
                match l[i + 1] {
                    b'1' => push_int(&mut s, i64::from(t.month), 2),
                    b'2' => push_int(&mut s, i64::from(t.day), 2),
                    b'3' => push_int(&mut s, i64::from(hour12), 2),
                    b'4' => push_int(&mut s, i64::from(t.minute), 2),
                    b'5' => push_int(&mut s, i64::from(t.second), 2),
                    _ => push_int(&mut s, t.year.abs() % 100, 2),
                }
                element = Some((2, s.clone()));
            }
            b'0' if at(i, "002") => {
                push_int(&mut s, t.yday(), 3);
                element = Some((3, s.clone()));
            }
            b'1' => {
                if at(i, "15") {
                    push_int(&mut s, i64::from(t.hour), 2);
                    element = Some((2, s.clone()));
                } else {
                    element = Some((1, t.month.to_string()));
                }
            }
            b'2' => {
                if at(i, "2006") {
                    push_int(&mut s, t.year, 4);
                    element = Some((4, s.clone()));
                } else {
                    element = Some((1, t.day.to_string()));
                }
            }
            b'_' if at(i, "_2") => {
                if at(i + 1, "2006") {
                    // "_2006" is a literal underscore and the year.
                    lit_extra = 1;
                    push_int(&mut s, t.year, 4);
                    element = Some((5, s.clone()));
                } else {
                    if t.day < 10 {
                        s.push(' ');
                    }
                    s.push_str(&t.day.to_string());
                    element = Some((2, s.clone()));
                }
            }
            b'_' if at(i, "__2") => {
                let yday = t.yday();
                if yday < 100 {
                    s.push(' ');
                    if yday < 10 {
                        s.push(' ');
                    }
                }
                s.push_str(&yday.to_string());
                element = Some((3, s.clone()));
            }
            b'3' => element = Some((1, hour12.to_string())),
            b'4' => element = Some((1, t.minute.to_string())),
            b'5' => element = Some((1, t.second.to_string())),
            b'P' if at(i, "PM") => {
                element = Some((2, if t.hour >= 12 { "PM" } else { "AM" }.to_string()))
            }
            b'p' if at(i, "pm") => {
                element = Some((2, if t.hour >= 12 { "pm" } else { "am" }.to_string()))
            }
            c @ (b'-' | b'Z') => {
                let iso = c == b'Z';
                for (pattern, colon, minutes, seconds) in [
                    ("070000", false, true, true),
                    ("07:00:00", true, true, true),
                    ("0700", false, true, false),
                    ("07:00", true, true, false),
                    ("07", false, false, false),
                ] {
                    if at(i + 1, pattern) {
                        if iso && t.offset == 0 {
                            s.push('Z');
                        } else {
                            let zone_minutes = t.offset / 60;
                            s.push(if zone_minutes < 0 { '-' } else { '+' });
                            let z = zone_minutes.abs();
                            push_int(&mut s, z / 60, 2);
                            if colon {
                                s.push(':');
                            }
                            if minutes {
                                push_int(&mut s, z % 60, 2);
                            }
                            if seconds {
                                if colon {
                                    s.push(':');
                                }
                                push_int(&mut s, t.offset.abs() % 60, 2);
                            }
                        }
                        element = Some((pattern.len() + 1, s.clone()));
                        break;
                    }
                }
            }
            c @ (b'.' | b',') if matches!(l.get(i + 1), Some(b'0' | b'9')) => {
                let ch = l[i + 1];
                let mut j = i + 1;
                while j < l.len() && l[j] == ch {
                    j += 1;
                }
                if !l.get(j).is_some_and(u8::is_ascii_digit) {
                    push_nanos(&mut s, t.nanos, j - (i + 1), ch == b'9', c as char);
                    element = Some((j - i, s.clone()));
                }
            }
            _ => {}
        }
        match element {
            Some((len, text)) => {
                out.push_str(&layout[literal_start..i + lit_extra]);
                out.push_str(&text);
                i += len;
                literal_start = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&layout[literal_start..]);
    out
}

/// `T.Name` for the methods of `time.Time` a template can call without
/// arguments; `None` for any other name. A month or weekday comes as its
/// English name (what Go prints for it).
pub fn method(map: &Map, name: &str) -> Option<Value> {
    let (civil, _) = civil_of(map)?;
    let unix = civil.days * 86_400 - civil.offset
        + i64::from(civil.hour) * 3600
        + i64::from(civil.minute) * 60
        + i64::from(civil.second);
    Some(match name {
        "Year" => Value::from(civil.year),
        "Month" => Value::from(MONTHS[civil.month as usize - 1]),
        "Day" => Value::from(civil.day),
        "Hour" => Value::from(civil.hour),
        "Minute" => Value::from(civil.minute),
        "Second" => Value::from(civil.second),
        "Nanosecond" => Value::from(civil.nanos),
        "YearDay" => Value::from(civil.yday()),
        "Weekday" => Value::from(DAYS[civil.weekday()]),
        "Unix" => Value::from(unix),
        "UnixNano" => Value::from(
            unix.saturating_mul(1_000_000_000)
                .saturating_add(i64::from(civil.nanos)),
        ),
        "String" => Value::from(time_string(map)),
        // Times are kept in UTC already.
        "UTC" | "Local" => Value::from(map.clone()),
        _ => return None,
    })
}

/// `go_datetime()`: confd's `datetime`, Go's `time.Now()`.
pub fn go_datetime(_: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let start = process_start();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Error::message(format!("datetime: the clock is before 1970: {e}")))?;
    let mono = i64::try_from(start.elapsed().as_nanos()).ok();
    Ok(time_value(
        i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
        now.subsec_nanos(),
        mono,
    ))
}

/// `go_time_format(t=T, layout=L)`: Go's `T.Format(L)`. `T` is a time from
/// `go_datetime`, or an RFC 3339 string.
pub fn go_time_format(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    let t = kwargs.must_get::<Value>("t")?;
    let layout = kwargs.must_get::<&str>("layout")?;
    let (civil, zone) = match Go::of(&t) {
        Go::Time(map) => civil_of(map)
            .map(|(c, z)| (c, z.to_string()))
            .ok_or_else(|| Error::message("Format: the time value is damaged"))?,
        Go::Str(text) => {
            let civil = parse_rfc3339(text).ok_or_else(|| {
                Error::message(format!("Format: {text:?} is not an RFC 3339 time"))
            })?;
            let zone = if civil.offset == 0 { "UTC" } else { "" };
            (civil, zone.to_string())
        }
        other => {
            return Err(Error::message(format!(
                "can't evaluate field Format in type {}",
                other.type_name()
            )));
        }
    };
    Ok(format_layout(&civil, &zone, layout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(rfc: &str, layout: &str) -> String {
        let civil = parse_rfc3339(rfc).expect("valid test time");
        format_layout(&civil, "UTC", layout)
    }

    // Expected strings from Go 1.19: time.Date(…, time.UTC).Format(layout).
    #[test]
    fn reference_layouts_like_go() {
        let t = "2024-03-05T07:08:09.012300000Z";
        assert_eq!(fmt(t, "2006-01-02 15:04:05.000"), "2024-03-05 07:08:09.012");
        assert_eq!(
            fmt(t, "Mon Jan _2 15:04:05 2006"),
            "Tue Mar  5 07:08:09 2024"
        );
        assert_eq!(
            fmt(t, "Monday January 2 3:4:5 PM pm"),
            "Tuesday March 5 7:8:9 AM am"
        );
        assert_eq!(
            fmt(t, "06/1/2 03 .999999999 ,000000"),
            "24/3/5 07 .0123 ,012300"
        );
        assert_eq!(fmt(t, "Z07:00 -0700 -07 MST Z0700"), "Z +0000 +00 UTC Z");
        assert_eq!(fmt(t, "002 __2 _2006"), "065  65 _2024");
        assert_eq!(fmt(t, "Janet Month 1.0001"), "Janet Month 3.0003");
        assert_eq!(
            fmt(t, "Z070000 -07:00:00 .9 .000000000000 15h"),
            "Z +00:00:00  .012300000 07h"
        );
        assert_eq!(
            fmt("2024-12-31T23:00:00Z", "002 __2 Mon Monday 3PM"),
            "366 366 Tue Tuesday 11PM"
        );
        assert_eq!(fmt(t, "2006-01-02T15:04:05Z07:00"), "2024-03-05T07:08:09Z");
    }

    #[test]
    fn string_form_like_go() {
        let value = time_value(1_709_622_489, 12_300_000, Some(1_500_000_000));
        let map = value.as_map().expect("a map");
        assert_eq!(
            time_string(map),
            "2024-03-05 07:08:09.0123 +0000 UTC m=+1.500000000"
        );
        let plain = time_value(0, 0, None);
        assert_eq!(
            time_string(plain.as_map().expect("a map")),
            "1970-01-01 00:00:00 +0000 UTC"
        );
    }
}
