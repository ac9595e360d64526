//! Durations as users write them (`30s`, `1m30s`, a bare number of
//! seconds, `-wait MIN:MAX`), bounded so a typo cannot stall the daemon.

use std::time::Duration;

use super::{MAX_WAIT, MAX_WAIT_TEXT};

/// Parses a duration: `30s`, `1m30s`, `500ms`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. \"30s\" or \"500ms\")"))
}

/// `duration` when it is at most `limit`; otherwise "longer than
/// `limit_text`", for the caller to say what is.
pub fn at_most(duration: Duration, limit: Duration, limit_text: &str) -> Result<Duration, String> {
    if duration > limit {
        return Err(format!("longer than {limit_text}"));
    }
    Ok(duration)
}

/// Parses `MIN:MAX` (or `MIN` alone, meaning MAX = 4 × MIN, as
/// consul-template does, capped at [`MAX_WAIT`]). Both are at most
/// [`MAX_WAIT`].
pub fn parse_wait(text: &str) -> Result<(Duration, Duration), String> {
    let bounded = |part: &str, name: &str| {
        let duration = parse_duration(part)?;
        at_most(duration, MAX_WAIT, MAX_WAIT_TEXT).map_err(|e| format!("{name} is {e}"))
    };
    let (min, max) = match text.split_once(':') {
        Some((min, max)) => (bounded(min, "MIN")?, bounded(max, "MAX")?),
        None => {
            let min = bounded(text, "MIN")?;
            (min, min.saturating_mul(4).min(MAX_WAIT))
        }
    };
    if max < min {
        return Err("MAX must not be shorter than MIN".to_string());
    }
    Ok((min, max))
}
