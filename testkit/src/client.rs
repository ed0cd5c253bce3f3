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
