//! The payload schemas of the event side, each taken from the type that is serialized (or
//! read) on the wire, through its `utoipa::ToSchema`, the way `/openapi.json` takes them:
//! a payload is described by one schema in both documents. Both keep reusable schemas at
//! `#/components/schemas/<name>`, so references read the same in either.

use crate::error::EventError;
use crate::events::{MailActivityEvent, MailStatusEvent, MaskedRecipient};
use crate::socket::{CatchUpAnswer, CatchUpArgs, LiveAuth, RoomAck};
use crate::store::DeliveryRecord;
use domain::{MailAnswer, MailRequest, MailRequestId, Recipient};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// The name under which `T`'s schema is kept, for a `$ref`.
pub fn name<T: ToSchema>() -> String {
    T::name().into_owned()
}

/// Every schema a message of the event side may reach, by name, as JSON; `templates` are the
/// mail request's variants of the catalog's templates outside the built-in set.
pub fn payloads(templates: &[Value]) -> Map<String, Value> {
    let mut all = Vec::new();
    add::<MailRequest>(&mut all);
    add::<MailAnswer>(&mut all);
    add::<MailRequestId>(&mut all);
    add::<DeliveryRecord>(&mut all);
    add::<EventError>(&mut all);
    add::<RoomAck>(&mut all);
    add::<MailStatusEvent>(&mut all);
    add::<MailActivityEvent>(&mut all);
    // `mail-activity.to` names both recipient shapes through a schema of its own.
    add::<Recipient>(&mut all);
    add::<MaskedRecipient>(&mut all);
    add::<LiveAuth>(&mut all);
    add::<CatchUpArgs>(&mut all);
    add::<CatchUpAnswer>(&mut all);
    let mut schemas: Map<String, Value> = all
        .into_iter()
        .map(|(name, schema)| (name, json(&schema)))
        .collect();
    schemas.insert(
        name::<MailRequest>(),
        json(&domain::schema::mail_request_with(templates.to_vec())),
    );
    schemas
}

/// `T`'s schema and those its fields refer to.
fn add<T: ToSchema>(all: &mut Vec<(String, RefOr<Schema>)>) {
    all.push((name::<T>(), T::schema()));
    T::schemas(all);
}

fn json(schema: &RefOr<Schema>) -> Value {
    serde_json::to_value(schema).expect("a schema serializes")
}
