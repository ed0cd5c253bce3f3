//! Customers' phone numbers: parsed (and stored) in E.164 by libphonenumber's rules, and the
//! one place that decides the form a viewer sees.

use phonenumber::Mode;

/// A valid phone number in E.164 (`+14155550123`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts international form with a leading `+` (spaces, dashes and brackets allowed);
    /// None when it is not a valid number.
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        if !trimmed.starts_with('+') || trimmed.len() > 32 {
            return None;
        }
        let number = phonenumber::parse(None, trimmed).ok()?;
        let e164 = number.format().mode(Mode::E164).to_string();
        // libphonenumber's metadata accepts some German numbers of 14 national digits, which
        // makes 16 in all: E.164 allows 15.
        (number.is_valid() && e164.len() <= 1 + 15).then_some(Self(e164))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// What a viewer without "show real phone numbers" sees: `+<country calling code>****` and the
/// last digits, four of them or fewer so as never to show more than half of the digits after
/// the country calling code (`+1****0123`, but `+683****02` for Niue's four-digit numbers). A
/// stored value that does not parse shows as `****` and at most its last four digits, never
/// more than half of them.
pub fn mask(stored: &str) -> String {
    let digits: Vec<char> = stored.chars().filter(char::is_ascii_digit).collect();
    let (prefix, after_code) = match phonenumber::parse(None, stored) {
        Ok(number) => {
            let code = number.code().value().to_string();
            let after_code = digits.len().saturating_sub(code.len());
            (format!("+{code}"), after_code)
        }
        Err(_) => (String::new(), digits.len()),
    };
    let shown = (after_code / 2).min(4);
    let tail: String = digits[digits.len() - shown..].iter().collect();
    format!("{prefix}****{tail}")
}

/// The form of `stored` for a viewer.
pub fn for_viewer(stored: &str, show_real_phone_numbers: bool) -> String {
    if show_real_phone_numbers { stored.to_owned() } else { mask(stored) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_to_e164() {
        assert_eq!(PhoneNumber::parse("+1 (415) 555-0123").unwrap().into_inner(), "+14155550123");
        assert_eq!(PhoneNumber::parse("+44 7911 123456").unwrap().into_inner(), "+447911123456");
        assert_eq!(PhoneNumber::parse("+852 2345 6789").unwrap().into_inner(), "+85223456789");
        for bad in ["4155550123", "+1", "+999 123", "call me", "+1 415 555 0123 ext. 99999999999999999999"] {
            assert!(PhoneNumber::parse(bad).is_none(), "{bad}");
        }
    }

    /// Found by the `parsers` fuzz target: this parsed as valid, to 16 digits.
    #[test]
    fn refuses_numbers_longer_than_e164_allows() {
        assert_eq!(PhoneNumber::parse("+(49 8948817)465 1223"), None);
        assert_eq!(PhoneNumber::parse("+49 89 4881746512").unwrap().into_inner(), "+49894881746512");
    }

    #[test]
    fn masks_with_country_calling_codes_of_any_length() {
        assert_eq!(mask("+14155550123"), "+1****0123");
        assert_eq!(mask("+447911123456"), "+44****3456");
        assert_eq!(mask("+85223456789"), "+852****6789");
    }

    /// Found by the `parsers` fuzz target: four digits were shown whatever the length, so all
    /// of a four-digit national number, and most of a short one, were visible.
    #[test]
    fn short_numbers_show_at_most_half_their_national_digits() {
        assert_eq!(PhoneNumber::parse("+683 4002").unwrap().into_inner(), "+6834002");
        assert_eq!(mask("+6834002"), "+683****02");
        assert_eq!(mask("+3545551234"), "+354****234");
        assert_eq!(mask("+1 (415)-0123"), "+1****123");
    }

    #[test]
    fn unparseable_numbers_show_at_most_half_their_digits() {
        assert_eq!(mask("12345678"), "****5678");
        assert_eq!(mask("123456"), "****456");
        assert_eq!(mask("12"), "****2");
        assert_eq!(mask("x"), "****");
    }

    #[test]
    fn the_viewer_decides() {
        assert_eq!(for_viewer("+14155550123", true), "+14155550123");
        assert_eq!(for_viewer("+14155550123", false), "+1****0123");
    }
}
