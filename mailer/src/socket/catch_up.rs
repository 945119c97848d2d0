//! `catch-up` on `/live`: `{after?: cursor}` → `{items, cursor}`, the changes after `after`
//! (or the latest [`CATCH_UP_LATEST`]), oldest first, at most [`CATCH_UP_MAX`].
//!
//! It reads the store for anonymous clients, so its cost is bounded three ways: one
//! `catch-up` per second per socket ([`CATCH_UP_EVERY`]), [`CATCH_UPS_AT_ONCE`] store reads
//! at once over every socket (a request waits at most [`CATCH_UP_WAIT`] for one), and
//! [`CATCH_UP_MAX`] items per answer. Past the first two the ack is `busy`, and the page
//! asks again a moment later.
//!
//! The payload is read by a deserializer of its own ([`CatchUpArgs`]), which refuses a
//! wrong shape at its first token instead of building it: a 5,000-deep array costs one
//! step, whatever serde_json's own depth limit would have said.

use crate::error::MailError;
use crate::events::{LiveRecipients, shown_on_live};
use crate::mailer_core::MailerCore;
use crate::store::Cursor;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The changes a `catch-up` without `after` answers: the page's opening rows.
pub const CATCH_UP_LATEST: u64 = 50;
/// The most changes one `catch-up` answers; a full answer means "ask again after it".
pub const CATCH_UP_MAX: u64 = 500;
/// Store reads for `catch-up` running at once, over every `/live` socket.
pub const CATCH_UPS_AT_ONCE: usize = 4;
/// How long a `catch-up` waits for one of those before it is answered `busy`.
const CATCH_UP_WAIT: Duration = Duration::from_secs(1);
/// The least time between two `catch-up`s of one socket that are served.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(1);

/// What every `/live` socket shares to answer `catch-up`.
#[derive(Clone)]
pub struct CatchUp {
    /// The store's reads.
    pub core: MailerCore,
    /// How recipients are shown to this mailer's viewers.
    pub recipients: LiveRecipients,
    /// Store reads under way for `catch-up`.
    pub slots: Arc<Semaphore>,
}

/// The ack of `catch-up`: each delivery changed since `after` once, in its latest state,
/// oldest first, at most 500 (a full answer means "ask again after `cursor`").
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatchUpAnswer {
    /// The changes, shown as `/live` shows `mail-activity` (masked without a live token).
    #[schema(value_type = Vec<crate::events::MailActivityEvent>)]
    items: Vec<Value>,
    /// The last item's cursor, or `after` when nothing changed since it
    /// (`"0000000000000000"` for an empty store).
    #[schema(value_type = String)]
    cursor: Cursor,
}

/// One socket's turn: when its last served `catch-up` started. A `std::sync::Mutex`: held
/// for a comparison only, never across an await.
#[derive(Default)]
pub struct SocketTurn(Mutex<Option<Instant>>);

impl SocketTurn {
    /// Takes this socket's turn, or says it is too soon.
    fn take(&self, now: Instant) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if now.saturating_duration_since(at) < CATCH_UP_EVERY => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

/// The arguments of a `catch-up` after its name: none, or one that is `null`, `{}` or
/// `{"after": <cursor or null>}`. To socketioxide's parser this is a tuple, so it gets the
/// whole argument list and can tell "no argument" (the latest) from a wrong one.
pub struct CatchUpArgs(Option<String>);

impl<'de> Deserialize<'de> for CatchUpArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_tuple(1, ArgsVisitor)
    }
}

/// Described as the one argument it reads: `{}` (or no payload, or `after: null`) asks for
/// the latest 50 changes.
impl utoipa::PartialSchema for CatchUpArgs {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let schema = json!({
            "type": "object",
            "description": "The payload of `catch-up` on `/live`: `{}` (or no payload, or `after: null`) asks for the latest 50 changes.",
            "properties": {"after": {
                "type": ["string", "null"],
                "description": "The cursor of the last change the client has: the answer holds the changes after it.",
            }},
        });
        serde_json::from_value(schema).expect("a schema")
    }
}

impl utoipa::ToSchema for CatchUpArgs {}

const EXPECTED: &str = "nothing, null, {} or {\"after\": <cursor>}";

struct ArgsVisitor;

impl<'de> Visitor<'de> for ArgsVisitor {
    type Value = CatchUpArgs;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut args: A) -> Result<CatchUpArgs, A::Error> {
        let after = args.next_element::<Payload>()?.and_then(|p| p.0);
        // Skipping a value is iterative in serde_json, however deep it is.
        if args.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("more than one argument"));
        }
        Ok(CatchUpArgs(after))
    }
}

/// The one argument: `null` or an object whose only field is `after`.
struct Payload(Option<String>);

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Payload, E> {
        Ok(Payload(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Payload, E> {
        Ok(Payload(None))
    }

    // The default would quote the whole string back.
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Payload, E> {
        Err(E::custom(
            "a string; the cursor goes in {\"after\": <cursor>}",
        ))
    }

    fn visit_map<M: MapAccess<'de>>(self, mut fields: M) -> Result<Payload, M::Error> {
        let mut after = None;
        while let Some(Field) = fields.next_key::<Field>()? {
            if after.is_some() {
                return Err(de::Error::custom("after given twice"));
            }
            after = Some(fields.next_value::<After>()?.0);
        }
        Ok(Payload(after.flatten()))
    }
}

/// The key `after`; any other is refused.
struct Field;

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the field after")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
                match key {
                    "after" => Ok(Field),
                    _ => Err(E::custom("an object with a field other than after")),
                }
            }
        }
        deserializer.deserialize_str(FieldVisitor)
    }
}

/// The value of `after`: a string or `null`.
struct After(Option<String>);

impl<'de> Deserialize<'de> for After {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AfterVisitor;
        impl<'de> Visitor<'de> for AfterVisitor {
            type Value = After;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a cursor string or null as after")
            }
            fn visit_unit<E: de::Error>(self) -> Result<After, E> {
                Ok(After(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<After, E> {
                Ok(After(None))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<After, E> {
                Ok(After(Some(text.to_owned())))
            }
        }
        deserializer.deserialize_any(AfterVisitor)
    }
}

fn invalid_cursor(got: impl fmt::Display) -> Value {
    MailError::invalid(
        "invalid_cursor",
        format!(
            "catch-up takes {EXPECTED}, where a cursor is the 16 digits of a mail-activity's cursor; got {got}."
        ),
    )
    .to_ack()
}

fn busy() -> Value {
    MailError::invalid(
        "busy",
        "catch-up is served once a second per socket and four at a time; ask again in a second.",
    )
    .to_ack()
}

/// Reads `args` (the socket.io arguments, or why they could not be read) as the cursor to
/// start after, none for the latest.
fn after_of<E: fmt::Display>(args: Result<CatchUpArgs, E>) -> Result<Option<Cursor>, Value> {
    match args {
        Ok(CatchUpArgs(None)) => Ok(None),
        Ok(CatchUpArgs(Some(text))) => Cursor::parse(&text).map(Some).ok_or_else(|| {
            let shown: String = text.chars().take(24).collect();
            let cut = if shown.len() < text.len() { "…" } else { "" };
            invalid_cursor(format_args!("{shown:?}{cut} as after"))
        }),
        Err(e) => {
            // serde_json's position adds nothing for a payload of one argument.
            let reason = e.to_string();
            let reason = reason.split(" at line ").next().unwrap_or_default();
            Err(invalid_cursor(reason))
        }
    }
}

/// The ack of one `catch-up` of the socket whose turn is `turn`: `{items, cursor}`, or
/// `{error, message}`.
pub async fn answer<E: fmt::Display>(
    catch_up: &CatchUp,
    turn: &SocketTurn,
    args: Result<CatchUpArgs, E>,
) -> Value {
    let after = match after_of(args) {
        Ok(after) => after,
        Err(ack) => return ack,
    };
    if !turn.take(Instant::now()) {
        return busy();
    }
    let Ok(Ok(_slot)) = tokio::time::timeout(CATCH_UP_WAIT, catch_up.slots.acquire()).await else {
        return busy();
    };
    let limit = if after.is_some() {
        CATCH_UP_MAX
    } else {
        CATCH_UP_LATEST
    };
    match catch_up.core.catch_up(after, limit).await {
        Ok(events) => {
            let cursor = events
                .last()
                .map(|e| e.cursor)
                .or(after)
                .unwrap_or_default();
            let items: Vec<Value> = events
                .into_iter()
                .filter_map(|e| shown_on_live(&e, catch_up.recipients))
                .collect();
            json!(CatchUpAnswer { items, cursor })
        }
        Err(e) => e.to_ack(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `args` as socketioxide hands a `catch-up` event over.
    fn read(args: &str) -> Result<Option<Cursor>, String> {
        // A tuple gets the whole argument list from socketioxide's parser, not the first one.
        assert!(socketioxide_core::parser::is_de_tuple::<CatchUpArgs>());
        let packet = format!(
            "[\"catch-up\"{}{args}]",
            if args.is_empty() { "" } else { "," }
        );
        match after_of(read_as_socketioxide(&packet)) {
            Ok(after) => Ok(after),
            Err(ack) => {
                assert_eq!(ack["error"], "invalid_cursor", "{ack}");
                Err(ack["message"].as_str().unwrap_or("").to_string())
            }
        }
    }

    /// The whole event array with its name skipped, as socketioxide's common parser does
    /// for a tuple.
    fn read_as_socketioxide(packet: &str) -> Result<CatchUpArgs, serde_json::Error> {
        struct SkipName;
        impl<'de> Visitor<'de> for SkipName {
            type Value = CatchUpArgs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CatchUpArgs, A::Error> {
                seq.next_element::<IgnoredAny>()?;
                ArgsVisitor.visit_seq(seq)
            }
        }
        let mut de = serde_json::Deserializer::from_str(packet);
        de::Deserializer::deserialize_seq(&mut de, SkipName)
    }

    #[test]
    fn nothing_null_and_an_empty_object_ask_for_the_latest() {
        for args in ["", "null", "{}", "{\"after\":null}"] {
            assert_eq!(read(args), Ok(None), "{args}");
        }
        assert_eq!(
            read("{\"after\":\"0000000000000042\"}"),
            Ok(Some(Cursor(42)))
        );
    }

    #[test]
    fn anything_but_a_cursor_is_an_invalid_cursor() {
        let deep = "[".repeat(5000) + &"]".repeat(5000);
        let long = format!("{{\"after\":\"{}\"}}", "1".repeat(40));
        for args in [
            "42",
            "\"0000000000000042\"",
            "[]",
            deep.as_str(),
            "{\"after\":42}",
            "{\"after\":\"-1\"}",
            "{\"after\":\"forty-two\"}",
            long.as_str(),
            "{\"after\":[[[[]]]]}",
            "{\"before\":\"0000000000000042\"}",
            "{\"after\":null,\"limit\":1000}",
            "{},{}",
            "true",
        ] {
            let message = read(args).expect_err(args);
            assert!(message.starts_with("catch-up takes"), "{args}: {message}");
            assert!(message.len() < 300, "{args}: {message}");
        }
    }

    #[test]
    fn a_socket_gets_one_turn_a_second() {
        let turn = SocketTurn::default();
        let start = Instant::now();
        assert!(turn.take(start));
        assert!(!turn.take(start + Duration::from_millis(999)));
        assert!(turn.take(start + CATCH_UP_EVERY));
    }
}
