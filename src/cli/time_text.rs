//! Durations ("30s", "500ms", "2m") and timestamps (epoch milliseconds or RFC 3339) as users
//! type them on the command line, and timestamps as the CLI prints them.

use std::time::Duration;

/// "30s", "500ms", "1m30s", "2h", or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|e| format!("'{text}': {e}"));
    }
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("'{text}' is not a duration like 30s, 500ms or 2m: {e}"))?;
    Duration::try_from(signed).map_err(|e| format!("'{text}': {e}"))
}

/// Milliseconds since the Unix epoch from an RFC 3339 timestamp with an offset or Z
/// ("2024-05-01T12:00:00Z", "2024-05-01T14:00:00+02:00").
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    let timestamp: jiff::Timestamp = text
        .trim()
        .parse()
        .map_err(|e| format!("'{text}' is not an RFC 3339 timestamp like 2024-05-01T12:00:00Z: {e}"))?;
    Ok(timestamp.as_millisecond())
}

/// RFC 3339 in UTC with milliseconds, or the raw number when it is outside jiff's range.
pub fn format_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(timestamp) if ms >= 0 => format!("{timestamp:.3}"),
        _ => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_friendly_units_and_bare_seconds() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-3s").is_err());
    }

    #[test]
    fn rfc3339_timestamps_honour_their_offset() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:01.5+01:00").unwrap(), 1500);
        assert!(parse_rfc3339_ms("yesterday").is_err());
        assert_eq!(format_ms(1500), "1970-01-01T00:00:01.500Z");
    }
}
