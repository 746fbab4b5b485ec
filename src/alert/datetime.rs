//! AWSDateTime, the timestamp scalar Panther uses for `createdAt`.
//!
//! The shape is `YYYY-MM-DDThh:mm[:ss[.f]]` followed by a compulsory offset
//! (`Z`, `±hh:mm` or `±hh:mm:ss`), with 1 to 9 fraction digits. The shape is
//! checked by a small strict scanner (no general-purpose parser accepts exactly
//! this grammar: RFC 3339 parsers demand seconds and accept lowercase or
//! colon-less variants); whether the date and time exist is decided by chrono.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use thiserror::Error;

/// Why a string is not an AWSDateTime.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DateTimeError {
    /// The text does not have the AWSDateTime shape.
    #[error("expected {expected} at character {at}")]
    Shape {
        /// Byte position of the first character that does not fit.
        at: usize,
        /// What the grammar wanted there.
        expected: &'static str,
    },
    /// The shape is right but the calendar has no such day.
    #[error("no such date {0}")]
    NoSuchDate(String),
    /// The shape is right but the clock has no such time (hour 24, minute 60...).
    #[error("no such time {0}")]
    NoSuchTime(String),
    /// The offset is outside what a clock can be offset by.
    #[error("offset out of range {0}")]
    BadOffset(String),
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn shape(&self, expected: &'static str) -> DateTimeError {
        DateTimeError::Shape {
            at: self.pos,
            expected,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn literal(&mut self, byte: u8, expected: &'static str) -> Result<(), DateTimeError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.shape(expected))
        }
    }

    fn digits(&mut self, count: usize, expected: &'static str) -> Result<u32, DateTimeError> {
        let mut value = 0u32;
        for _ in 0..count {
            match self.peek() {
                Some(d @ b'0'..=b'9') => {
                    value = value * 10 + u32::from(d - b'0');
                    self.pos += 1;
                }
                _ => return Err(self.shape(expected)),
            }
        }
        Ok(value)
    }

    /// One to nine digits, scaled to nanoseconds.
    fn fraction(&mut self) -> Result<u32, DateTimeError> {
        let start = self.pos;
        let mut nanos = 0u32;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            if self.pos - start == 9 {
                return Err(self.shape("at most 9 fraction digits"));
            }
            nanos = nanos * 10 + u32::from(d - b'0');
            self.pos += 1;
        }
        let count = self.pos - start;
        if count == 0 {
            return Err(self.shape("a fraction digit"));
        }
        Ok(nanos * 10u32.pow(9 - count as u32))
    }
}

/// Parses an AWSDateTime strictly.
///
/// ```
/// use hookscope::alert::parse_aws_datetime;
/// assert!(parse_aws_datetime("2024-02-29T12:30Z").is_ok());
/// assert!(parse_aws_datetime("2023-02-29T12:30Z").is_err());
/// assert!(parse_aws_datetime("2024-01-01T00:00:00+0100").is_err());
/// ```
pub fn parse_aws_datetime(text: &str) -> Result<DateTime<FixedOffset>, DateTimeError> {
    let mut s = Scanner {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let year = s.digits(4, "a 4-digit year")?;
    s.literal(b'-', "'-' after the year")?;
    let month = s.digits(2, "a 2-digit month")?;
    s.literal(b'-', "'-' after the month")?;
    let day = s.digits(2, "a 2-digit day")?;
    s.literal(b'T', "'T' between date and time")?;
    let hour = s.digits(2, "a 2-digit hour")?;
    s.literal(b':', "':' after the hour")?;
    let minute = s.digits(2, "a 2-digit minute")?;
    let (mut second, mut nanos) = (0, 0);
    if s.peek() == Some(b':') {
        s.pos += 1;
        second = s.digits(2, "2-digit seconds")?;
        if s.peek() == Some(b'.') {
            s.pos += 1;
            nanos = s.fraction()?;
        }
    }
    let offset_seconds = match s.peek() {
        Some(b'Z') => {
            s.pos += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            s.pos += 1;
            let hours = s.digits(2, "2-digit offset hours")?;
            s.literal(b':', "':' in the offset (±hh:mm)")?;
            let minutes = s.digits(2, "2-digit offset minutes")?;
            let mut seconds = 0;
            if s.peek() == Some(b':') {
                s.pos += 1;
                seconds = s.digits(2, "2-digit offset seconds")?;
            }
            if hours > 23 || minutes > 59 || seconds > 59 {
                return Err(DateTimeError::BadOffset(
                    text[s.pos.saturating_sub(9)..].into(),
                ));
            }
            let total = (hours * 3600 + minutes * 60 + seconds) as i32;
            if sign == b'-' { -total } else { total }
        }
        _ => return Err(s.shape("an offset: 'Z', '±hh:mm' or '±hh:mm:ss'")),
    };
    if s.pos != s.bytes.len() {
        return Err(s.shape("the end of the timestamp"));
    }

    let date = NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or_else(|| DateTimeError::NoSuchDate(format!("{year:04}-{month:02}-{day:02}")))?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
        .ok_or_else(|| DateTimeError::NoSuchTime(format!("{hour:02}:{minute:02}:{second:02}")))?;
    let offset = FixedOffset::east_opt(offset_seconds)
        .ok_or_else(|| DateTimeError::BadOffset(offset_seconds.to_string()))?;
    NaiveDateTime::new(date, time)
        .and_local_timezone(offset)
        .single()
        .ok_or_else(|| DateTimeError::BadOffset(offset_seconds.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) {
        assert!(parse_aws_datetime(text).is_ok(), "{text} should parse");
    }

    fn bad(text: &str) {
        assert!(
            parse_aws_datetime(text).is_err(),
            "{text} should be refused"
        );
    }

    #[test]
    fn accepts_every_documented_shape() {
        ok("2024-01-15T10:20Z");
        ok("2024-01-15T10:20:30Z");
        ok("2024-01-15T10:20:30.1Z");
        ok("2024-01-15T10:20:30.123456789Z");
        ok("2024-01-15T10:20:30+05:30");
        ok("2024-01-15T10:20:30-08:00");
        ok("2024-01-15T10:20:30+05:30:15");
        ok("2024-01-15T10:20+01:00");
        ok("0000-01-01T00:00Z");
        ok("9999-12-31T23:59:59.999999999+23:59:59");
    }

    #[test]
    fn fraction_digits_are_bounded_one_to_nine() {
        bad("2024-01-15T10:20:30.Z");
        bad("2024-01-15T10:20:30.1234567890Z");
        let parsed = parse_aws_datetime("2024-01-15T10:20:30.5Z").unwrap();
        assert_eq!(parsed.timestamp_subsec_nanos(), 500_000_000);
    }

    #[test]
    fn offset_is_compulsory_and_colon_separated() {
        bad("2024-01-15T10:20:30");
        bad("2024-01-15T10:20:30+0100");
        bad("2024-01-15T10:20:30+01");
        bad("2024-01-15T10:20:30z");
        bad("2024-01-15T10:20:30+24:00");
        bad("2024-01-15T10:20:30+01:60");
        bad("2024-01-15T10:20:30+01:00:60");
    }

    #[test]
    fn the_date_and_time_must_exist() {
        bad("2023-02-29T00:00Z");
        ok("2024-02-29T00:00Z");
        ok("2000-02-29T00:00Z");
        bad("1900-02-29T00:00Z");
        bad("2024-02-30T00:00Z");
        bad("2024-04-31T00:00Z");
        bad("2024-13-01T00:00Z");
        bad("2024-00-10T00:00Z");
        bad("2024-01-00T00:00Z");
        bad("2024-01-01T24:00Z");
        bad("2024-01-01T23:60Z");
        bad("2024-01-01T23:59:60Z");
    }

    #[test]
    fn shape_errors_name_the_position() {
        assert_eq!(
            parse_aws_datetime("2024-01-15 10:20Z"),
            Err(DateTimeError::Shape {
                at: 10,
                expected: "'T' between date and time"
            })
        );
        bad("");
        bad("2024-1-15T10:20Z");
        bad("2024-01-15t10:20Z");
        bad("2024-01-15T10:20Z ");
        bad("24-01-15T10:20Z");
        bad("2024-01-15T10Z");
        bad("2024-01-15T10:20:3Z");
        bad("２０２４-01-15T10:20Z");
    }

    #[test]
    fn offset_is_applied() {
        let parsed = parse_aws_datetime("2024-01-15T10:20:30-02:30").unwrap();
        assert_eq!(parsed.to_utc().to_rfc3339(), "2024-01-15T12:50:30+00:00");
    }
}
