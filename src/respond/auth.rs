//! `--require-header`: the secret headers a sender must present.

use http::{HeaderMap, HeaderName, HeaderValue};
use subtle::ConstantTimeEq;

/// Why a request was refused with 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthorized {
    /// The header that was missing or wrong.
    pub header: HeaderName,
    /// True when the header was present with another value.
    pub wrong_value: bool,
}

impl Unauthorized {
    /// The one-line reason sent back (never the expected value).
    pub fn reason(&self) -> String {
        if self.wrong_value {
            format!("unauthorized: wrong value for header {}\n", self.header)
        } else {
            format!("unauthorized: missing header {}\n", self.header)
        }
    }
}

/// Checks every required header; values are compared in constant time.
pub fn authorize(
    headers: &HeaderMap,
    required: &[(HeaderName, HeaderValue)],
) -> Result<(), Unauthorized> {
    for (name, expected) in required {
        let Some(given) = headers.get(name) else {
            return Err(Unauthorized {
                header: name.clone(),
                wrong_value: false,
            });
        };
        if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(Unauthorized {
                header: name.clone(),
                wrong_value: true,
            });
        }
    }
    Ok(())
}

pub use crate::values::mask;

#[cfg(test)]
mod tests {
    use super::*;

    fn required() -> Vec<(HeaderName, HeaderValue)> {
        vec![(
            HeaderName::from_static("x-token"),
            HeaderValue::from_static("s3cret"),
        )]
    }

    #[test]
    fn missing_and_wrong_values_are_refused() {
        let mut headers = HeaderMap::new();
        let refused = authorize(&headers, &required()).unwrap_err();
        assert!(!refused.wrong_value);
        assert_eq!(refused.reason(), "unauthorized: missing header x-token\n");
        headers.insert("x-token", HeaderValue::from_static("s3cre"));
        let refused = authorize(&headers, &required()).unwrap_err();
        assert!(refused.wrong_value);
        assert!(!refused.reason().contains("s3cret"));
        headers.insert("x-token", HeaderValue::from_static("s3cret"));
        assert_eq!(authorize(&headers, &required()), Ok(()));
        assert_eq!(authorize(&headers, &[]), Ok(()));
    }

    #[test]
    fn masks_never_show_the_value() {
        assert_eq!(mask(b"s3cret", true), "<masked: 6 bytes, matches>");
        assert!(!mask(b"guess", false).contains("guess"));
    }
}
