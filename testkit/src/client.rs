//! A typed view of GraphQL responses, and the requests every server handle sends.

use std::net::SocketAddr;

use serde_json::{Value, json};

pub const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) {
    token agent { id username } userErrors { field message code } } }";

/// POSTs a GraphQL request to the server at `addr`, signed in as `session` when given.
pub async fn post(
    http: &reqwest::Client,
    addr: SocketAddr,
    session: Option<&Session>,
    query: &str,
    variables: Value,
) -> Gql {
    let mut request =
        http.post(format!("http://{addr}/graphql")).json(&json!({ "query": query, "variables": variables }));
    if let Some(session) = session {
        request = request.bearer_auth(&session.token);
    }
    let response = request.send().await.expect("request reaches the server");
    Gql::from_response(response).await
}

/// A running server: in this process, or a spawned one.
pub trait Endpoint {
    fn addr(&self) -> SocketAddr;
    fn http(&self) -> &reqwest::Client;

    fn post(
        &self,
        session: Option<&Session>,
        query: &str,
        variables: Value,
    ) -> impl Future<Output = Gql> + Send {
        post(self.http(), self.addr(), session, query, variables)
    }
}

/// A signed-in agent: its bearer token and global ID.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub agent_id: String,
}

impl Session {
    /// The session a `LOGIN` response signed in, or a panic with its userErrors.
    pub fn from_login(response: &Gql, username: &str) -> Self {
        let data = response.data();
        let token = data["login"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login as {username} failed: {data}"))
            .to_owned();
        let agent_id = data["login"]["agent"]["id"].as_str().expect("agent id").to_owned();
        Self { token, agent_id }
    }
}

#[derive(Debug)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    pub async fn from_response(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (HTTP {status}): {text}"));
        Self { status, body }
    }

    /// `data`, after asserting there were no errors.
    pub fn data(&self) -> Value {
        assert!(self.body.get("errors").is_none(), "unexpected errors: {}", self.body);
        self.body["data"].clone()
    }

    pub fn errors(&self) -> Vec<Value> {
        self.body["errors"].as_array().cloned().unwrap_or_default()
    }

    /// `extensions.code` of the first top-level error.
    pub fn error_code(&self) -> String {
        let errors = self.errors();
        let first = errors.first().unwrap_or_else(|| panic!("expected an error, got {}", self.body));
        first["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("error without code: {first}"))
            .to_owned()
    }

    /// The codes of `userErrors` of the payload at `data.<field>`.
    pub fn user_error_codes(&self, field: &str) -> Vec<String> {
        self.data()[field]["userErrors"]
            .as_array()
            .unwrap_or_else(|| panic!("no userErrors in {}", self.body))
            .iter()
            .map(|e| e["code"].as_str().expect("code").to_owned())
            .collect()
    }
}

/// A JSON document as its text orders it: `serde_json::Value` sorts object keys, and the
/// order of a response's keys is part of what GraphQL promises (selection order).
#[derive(Debug, PartialEq)]
pub enum Ordered {
    Object(Vec<(String, Ordered)>),
    List(Vec<Ordered>),
    Scalar,
}

impl Ordered {
    pub fn parse(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> &Ordered {
        let Ordered::Object(fields) = self else { panic!("not an object: {self:?}") };
        fields
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
            .unwrap_or_else(|| panic!("no {key}"))
    }

    /// An object's keys, in order.
    pub fn keys(&self) -> Vec<&str> {
        let Ordered::Object(fields) = self else { panic!("not an object: {self:?}") };
        fields.iter().map(|(name, _)| name.as_str()).collect()
    }

    pub fn items(&self) -> &[Ordered] {
        let Ordered::List(items) = self else { panic!("not a list: {self:?}") };
        items
    }
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Ordered;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = vec![];
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(Ordered::Object(fields))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = vec![];
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::List(items))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
