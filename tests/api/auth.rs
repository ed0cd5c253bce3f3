//! Signing in and out, tokens, and what a signed-out client may do.

use agentdesk::{
    auth::token,
    db::entities::{agent, session},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, prelude::Expr};
use serde_json::json;

use crate::common::{Backend, TestServer, server::ADMIN_PASSWORD};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        login_succeeds_and_viewer_answers,
        username_and_organization_are_case_insensitive,
        wrong_password_is_invalid_credentials,
        unknown_user_or_organization_is_invalid_credentials,
        disabled_agent_is_told_only_after_a_correct_password,
        disabling_an_agent_revokes_its_tokens,
        logout_ends_only_that_session,
        signed_out_clients_get_unauthenticated,
        malformed_or_unknown_tokens_are_signed_out,
        tokens_are_stored_only_as_hashes,
        another_organizations_ids_behave_as_absent,
    ]
}

const VIEWER: &str = "{ viewer { id username role displayName avatarInitial enabled }
                       organization { name slug seatLimit humanAgentServiceEnabled } }";

async fn login_succeeds_and_viewer_answers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let data = server.gql(Some(&admin), VIEWER, json!({})).await.data();
    assert_eq!(data["viewer"]["username"], "admin");
    assert_eq!(data["viewer"]["role"], "ADMIN");
    assert_eq!(data["viewer"]["id"], admin.agent_id.as_str());
    assert_eq!(data["viewer"]["avatarInitial"], "A");
    assert_eq!(
        data["organization"],
        json!({ "name": "Demo", "slug": "demo", "seatLimit": 25, "humanAgentServiceEnabled": true })
    );
    server.stop().await;
}

async fn username_and_organization_are_case_insensitive(backend: Backend) {
    let server = TestServer::start(backend).await;
    let session = server.login("DEMO", " Admin ", ADMIN_PASSWORD).await;
    let data = server.gql(Some(&session), VIEWER, json!({})).await.data();
    assert_eq!(data["viewer"]["username"], "admin");
}

async fn wrong_password_is_invalid_credentials(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server.try_login("demo", "admin", "not-the-password").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.user_error_codes("login"), ["INVALID_CREDENTIALS"]);
    assert!(response.data()["login"]["token"].is_null());
    assert!(response.data()["login"]["agent"].is_null());
}

async fn unknown_user_or_organization_is_invalid_credentials(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (organization, username) in [("demo", "nobody"), ("nowhere", "admin")] {
        let response = server.try_login(organization, username, ADMIN_PASSWORD).await;
        assert_eq!(response.user_error_codes("login"), ["INVALID_CREDENTIALS"], "{organization}/{username}");
    }
}

async fn set_enabled(server: &TestServer, username: &str, enabled: bool) {
    agent::Entity::update_many()
        .col_expr(agent::Column::Enabled, Expr::value(enabled))
        .filter(agent::Column::Username.eq(username))
        .exec(server.db())
        .await
        .expect("update agent");
}

async fn disabled_agent_is_told_only_after_a_correct_password(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_organization("acme", 5, "boss", "boss-password").await;
    set_enabled(&server, "boss", false).await;
    let right = server.try_login("acme", "boss", "boss-password").await;
    assert_eq!(right.user_error_codes("login"), ["AGENT_DISABLED"]);
    let wrong = server.try_login("acme", "boss", "guessing").await;
    assert_eq!(wrong.user_error_codes("login"), ["INVALID_CREDENTIALS"]);
}

async fn disabling_an_agent_revokes_its_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_organization("acme", 5, "boss", "boss-password").await;
    let boss = server.login("acme", "boss", "boss-password").await;
    set_enabled(&server, "boss", false).await;
    let response = server.gql(Some(&boss), "{ viewer { id } }", json!({})).await;
    assert!(response.data()["viewer"].is_null());
    assert_eq!(
        server.gql(Some(&boss), "{ organization { name } }", json!({})).await.error_code(),
        "UNAUTHENTICATED"
    );
}

async fn logout_ends_only_that_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let first = server.admin().await;
    let second = server.admin().await;
    let response = server.gql(Some(&first), "mutation { logout }", json!({})).await;
    assert_eq!(response.data()["logout"], true);
    let after = server.gql(Some(&first), "{ organization { name } }", json!({})).await;
    assert_eq!(after.error_code(), "UNAUTHENTICATED");
    let other = server.gql(Some(&second), "{ organization { name } }", json!({})).await;
    assert_eq!(other.data()["organization"]["name"], "Demo");
}

async fn signed_out_clients_get_unauthenticated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let viewer = server.gql(None, "{ viewer { id } }", json!({})).await;
    assert!(viewer.data()["viewer"].is_null());
    for query in [
        "{ organization { name } }",
        "{ agent(id: \"QWdlbnQ6MQ\") { id } }",
        "{ node(id: \"QWdlbnQ6MQ\") { id } }",
        "mutation { logout }",
    ] {
        let response = server.gql(None, query, json!({})).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.error_code(), "UNAUTHENTICATED", "{query}");
        assert!(response.body["data"].is_null(), "{query}: {}", response.body);
    }
}

async fn malformed_or_unknown_tokens_are_signed_out(backend: Backend) {
    let server = TestServer::start(backend).await;
    for header in ["Bearer adk_forged", "Basic YWRtaW46YWRtaW4=", "Bearer", "adk_x"] {
        let response = server
            .http
            .post(server.url("/graphql"))
            .header("authorization", header)
            .json(&json!({ "query": "{ viewer { id } organization { name } }" }))
            .send()
            .await
            .unwrap();
        let gql = crate::common::Gql::from_response(response).await;
        assert_eq!(gql.error_code(), "UNAUTHENTICATED", "{header}");
    }
}

async fn tokens_are_stored_only_as_hashes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let stored: Vec<String> =
        session::Entity::find().all(server.db()).await.unwrap().into_iter().map(|s| s.token_hash).collect();
    assert_eq!(stored, [token::hash(&admin.token)]);
    assert!(!stored[0].contains(&admin.token));
    assert!(admin.token.len() >= 40, "at least 128 random bits: {}", admin.token);
}

async fn another_organizations_ids_behave_as_absent(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_organization("acme", 5, "boss", "boss-password").await;
    let boss = server.login("acme", "boss", "boss-password").await;
    let admin = server.admin().await;
    let org_id = server.gql(Some(&admin), "{ organization { id } }", json!({})).await.data()["organization"]
        ["id"]
        .clone();
    let data = server
        .gql(
            Some(&boss),
            "query($agent: ID!, $org: ID!) { agent(id: $agent) { id } a: node(id: $agent) { id } o: node(id: $org) { id } }",
            json!({ "agent": admin.agent_id, "org": org_id }),
        )
        .await
        .data();
    assert_eq!(data, json!({ "agent": null, "a": null, "o": null }));
}
