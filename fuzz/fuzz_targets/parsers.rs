//! The input parsers: every value a client sends is turned into one of these types, and the
//! rest of the code trusts them. So beyond "does not panic", each accepted value must obey the
//! rule its doc comment states, and parsing the accepted value again must give it back
//! unchanged (what is stored, re-read and re-validated stays valid).
//!
//! Input: any bytes, read as UTF-8 (invalid sequences become U+FFFD; GraphQL strings are
//! always valid UTF-8, so nothing else can reach the parsers). Every parser sees the same text.

#![no_main]

use agentdesk::{
    auth::model::{Password, PasswordProblem},
    directory::model::{
        DisplayName, DisplayNameProblem, Email, MaxConcurrentSessions, QueueName, Slug, Username,
    },
    graphql::id,
    phone::{self, PhoneNumber},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    username(&raw);
    display_name(&raw);
    email(&raw);
    queue_name(&raw);
    slug(&raw);
    password(&raw);
    phone_number(&raw);
    masking(&raw);
    global_id(&raw);
    max_concurrent_sessions(data);
});

/// 3–64 characters of `[a-z0-9._-]`.
fn username(raw: &str) {
    let Some(parsed) = Username::parse(raw) else { return };
    let value = parsed.as_str();
    assert!((3..=64).contains(&value.len()), "username length: {value:?}");
    assert!(
        value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)),
        "username characters: {value:?}"
    );
    assert_eq!(Username::parse(value).as_ref(), Some(&parsed), "username re-parse");
}

/// 1–100 characters after trimming; empty is `Required`, longer is `TooLong`.
fn display_name(raw: &str) {
    let chars = raw.trim().chars().count();
    match DisplayName::parse(raw) {
        Ok(parsed) => {
            let value = parsed.as_str();
            assert_eq!(value, raw.trim(), "display name is the trimmed input");
            assert!((1..=DisplayName::MAX_CHARS).contains(&value.chars().count()));
            assert_eq!(DisplayName::parse(value).as_ref(), Ok(&parsed), "display name re-parse");
        }
        Err(DisplayNameProblem::Required) => assert_eq!(chars, 0, "Required for {raw:?}"),
        Err(DisplayNameProblem::TooLong) => assert!(chars > DisplayName::MAX_CHARS, "TooLong for {raw:?}"),
    }
}

/// A trimmed RFC 5322 addr-spec of at most 254 bytes.
fn email(raw: &str) {
    let Some(parsed) = Email::parse(raw) else { return };
    let value = parsed.clone().into_inner();
    assert_eq!(value, raw.trim(), "e-mail is the trimmed input");
    assert!(value.len() <= 254, "e-mail of {} bytes", value.len());
    assert!(value.contains('@'), "e-mail without @: {value:?}");
    assert_eq!(Email::parse(&value), Some(parsed), "e-mail re-parse");
}

/// 1–100 characters after trimming, unique by its lower-cased key.
fn queue_name(raw: &str) {
    let Some(parsed) = QueueName::parse(raw) else { return };
    let value = parsed.as_str();
    assert_eq!(value, raw.trim(), "queue name is the trimmed input");
    assert!((1..=100).contains(&value.chars().count()));
    let again = QueueName::parse(value).expect("queue name re-parses");
    assert_eq!(again.key(), parsed.key(), "queue key re-parse");
    assert_eq!(parsed.key(), value.to_lowercase());
}

/// 2–64 of `[a-z0-9-]`.
fn slug(raw: &str) {
    let Some(parsed) = Slug::parse(raw) else { return };
    let value = parsed.to_string();
    assert!((2..=64).contains(&value.len()), "slug length: {value:?}");
    assert!(
        value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "slug characters: {value:?}"
    );
    assert_eq!(Slug::parse(&value), Some(parsed), "slug re-parse");
}

/// At least 6 characters, at most 1024 bytes, kept as given, and never shown by `Debug`.
fn password(raw: &str) {
    match Password::parse(raw.to_owned()) {
        Ok(parsed) => {
            assert_eq!(parsed.expose(), raw);
            assert!(raw.len() <= Password::MAX_BYTES && raw.chars().count() >= Password::MIN_CHARS);
            assert_eq!(format!("{parsed:?}"), "Password(<redacted>)", "Debug must not depend on the secret");
        }
        Err(PasswordProblem::TooLong) => assert!(raw.len() > Password::MAX_BYTES),
        Err(PasswordProblem::TooShort) => {
            assert!(raw.len() <= Password::MAX_BYTES && raw.chars().count() < Password::MIN_CHARS)
        }
    }
}

/// E.164: `+`, then at most 15 digits, the first not 0; stable when parsed again.
fn phone_number(raw: &str) {
    let Some(parsed) = PhoneNumber::parse(raw) else { return };
    let value = parsed.clone().into_inner();
    let digits = value.strip_prefix('+').unwrap_or_else(|| panic!("E.164 starts with +: {value:?}"));
    assert!(
        (1..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0'),
        "not E.164: {value:?}"
    );
    assert_eq!(PhoneNumber::parse(&value), Some(parsed), "phone re-parse");
}

/// `mask` takes any stored string. It shows `****` and a tail of the digits, after
/// `+<country calling code>` when the string parses as a number; the tail is at most four
/// digits and never more than half of the digits that follow the country code.
fn masking(raw: &str) {
    let masked = phone::mask(raw);
    assert_eq!(phone::for_viewer(raw, false), masked);
    assert_eq!(phone::for_viewer(raw, true), raw);

    let (code, tail) = masked.split_once("****").unwrap_or_else(|| panic!("no **** in {masked:?}"));
    let code = match code.strip_prefix('+') {
        Some(code) => {
            assert!(
                (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()),
                "code {masked:?}"
            );
            code
        }
        None => {
            assert!(code.is_empty(), "text before ****: {masked:?}");
            code
        }
    };
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    assert!(tail.bytes().all(|b| b.is_ascii_digit()), "tail {masked:?}");
    assert!(digits.ends_with(tail), "tail {tail:?} is not the end of the digits of {raw:?}");
    let after_code = digits.len().saturating_sub(code.len());
    assert!(
        tail.len() <= 4 && tail.len() * 2 <= after_code,
        "{masked:?} shows {} of the {after_code} digits after the country code of {raw:?}",
        tail.len()
    );
}

/// A global ID names a kind and a positive number, and that pair encodes to an ID that
/// decodes to it again.
fn global_id(raw: &str) {
    let Some((kind, number)) = id::decode(&async_graphql::ID(raw.to_owned())) else { return };
    assert!(number > 0, "{raw:?} decoded to {number}");
    assert_eq!(id::decode(&id::encode(kind, number)), Some((kind, number)));
}

/// 1–1000 or unlimited (absent); the first four bytes are the number.
fn max_concurrent_sessions(data: &[u8]) {
    let raw = data.first_chunk::<4>().map(|bytes| i32::from_le_bytes(*bytes));
    match MaxConcurrentSessions::parse(raw) {
        Some(parsed) => {
            assert_eq!(parsed.get(), raw);
            assert!(raw.is_none_or(|limit| (1..=1000).contains(&limit)));
        }
        None => assert!(raw.is_some_and(|limit| !(1..=1000).contains(&limit))),
    }
}
