//! Sign-in abuse: attempts are limited per account and per client address (both across
//! instances), and a refused attempt costs no password hashing.

use std::{
    net::{IpAddr, Ipv4Addr},
    num::NonZeroU32,
    time::Duration,
};

use agentdesk::{auth::service as auth, db::entities::login_allowance};
use futures_util::future::join_all;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::common::{
    Backend, Gql, TestServer,
    metrics::{scrape, value},
    server::ADMIN_PASSWORD,
};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        a_storm_of_wrong_passwords_is_rate_limited_before_hashing,
        sign_in_attempts_are_limited_per_client_address,
        an_account_has_one_allowance_however_many_instances_serve_it,
        an_address_has_one_allowance_however_many_instances_serve_it,
        allowances_are_forgotten_once_whole_again,
    ]
}

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) {
    token retryAfterSeconds userErrors { message code } } }";

const HASHES: &str = "agentdesk_password_hashes_total";

async fn login_from(http: &reqwest::Client, server: &TestServer, username: &str, password: &str) -> Value {
    let variables =
        json!({ "input": { "organization": "demo", "username": username, "password": password } });
    let response = http
        .post(server.url("/graphql"))
        .json(&json!({ "query": LOGIN, "variables": variables }))
        .send()
        .await
        .unwrap();
    Gql::from_response(response).await.data()["login"].clone()
}

fn code(login: &Value) -> &str {
    login["userErrors"][0]["code"].as_str().unwrap_or("none")
}

async fn a_storm_of_wrong_passwords_is_rate_limited_before_hashing(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.login_attempts_per_account = NonZeroU32::new(3).unwrap();
    })
    .await;
    server.seed_agents("demo", "victim", 1).await;
    let before = value(&scrape(&server).await, HASHES);

    let storm = (0..30).map(|_| login_from(&server.http, &server, "victim-0000", "wrong-guess"));
    let outcomes = join_all(storm).await;
    let limited: Vec<_> = outcomes.iter().filter(|login| code(login) == "RATE_LIMITED").collect();
    let invalid = outcomes.iter().filter(|login| code(login) == "INVALID_CREDENTIALS").count();
    assert_eq!((invalid, limited.len()), (3, 27), "{outcomes:?}");
    for login in &limited {
        let seconds = login["retryAfterSeconds"].as_u64().expect("a retry-after hint");
        assert!((1..=20).contains(&seconds), "3 a minute: one every 20 s: {login}");
        let message = login["userErrors"][0]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{seconds} seconds")), "{message}");
    }
    // Only the three admitted attempts reached argon2.
    let after = value(&scrape(&server).await, HASHES);
    assert_eq!(after - before, 3.0, "hashes computed during the storm");

    // The locked account refuses even its right password for now; another account signs in.
    let locked = login_from(&server.http, &server, "victim-0000", "password1").await;
    assert_eq!(code(&locked), "RATE_LIMITED");
    let admin = server.try_login("demo", "admin", ADMIN_PASSWORD).await;
    assert!(admin.data()["login"]["token"].is_string(), "{:?}", admin.body);
}

async fn sign_in_attempts_are_limited_per_client_address(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.login_attempts_per_address = NonZeroU32::new(5).unwrap();
    })
    .await;
    // One guess at each of many accounts from one address.
    for n in 0..5 {
        let login = login_from(&server.http, &server, &format!("guess-{n}"), "wrong-guess").await;
        assert_eq!(code(&login), "INVALID_CREDENTIALS");
    }
    let limited = login_from(&server.http, &server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(code(&limited), "RATE_LIMITED", "{limited}");
    assert!(limited["token"].is_null());

    // Another address (the loopback network is 127/8) is not held back by the first one.
    let elsewhere =
        reqwest::Client::builder().local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))).build().unwrap();
    let admin = login_from(&elsewhere, &server, "admin", ADMIN_PASSWORD).await;
    assert!(admin["token"].is_string(), "{admin}");
}

/// Behind a balancer, each instance's in-memory limiter would give an attacker one
/// allowance per instance; the account's allowance in the database is the one they share.
/// Accounts that do not exist are limited alike, so a refusal tells nothing.
async fn an_account_has_one_allowance_however_many_instances_serve_it(backend: Backend) {
    let first = TestServer::start_with(backend, |config| {
        config.login_attempts_per_account = NonZeroU32::new(3).unwrap();
    })
    .await;
    let second = first.another_instance().await;
    first.seed_agents("demo", "victim", 1).await;
    for username in ["victim-0000", "nobody-at-all"] {
        let storm = (0..12).map(|n| {
            let server = if n % 2 == 0 { &first } else { &second };
            login_from(&server.http, server, username, "wrong-guess")
        });
        let outcomes = join_all(storm).await;
        let invalid = outcomes.iter().filter(|login| code(login) == "INVALID_CREDENTIALS").count();
        let limited: Vec<_> = outcomes.iter().filter(|login| code(login) == "RATE_LIMITED").collect();
        assert_eq!((invalid, limited.len()), (3, 9), "{username}: {outcomes:?}");
        for login in limited {
            let seconds = login["retryAfterSeconds"].as_u64().expect("a retry-after hint");
            assert!((1..=60).contains(&seconds), "{username}: {login}");
        }
    }
    // An instance that has seen none of it refuses too, even the right password.
    let third = first.another_instance().await;
    let locked = login_from(&third.http, &third, "victim-0000", "password1").await;
    assert_eq!(code(&locked), "RATE_LIMITED", "{locked}");
    third.stop().await;
    second.stop().await;
}

/// The same for a client address: guesses at many accounts, spread over several instances,
/// draw on one allowance of the address.
async fn an_address_has_one_allowance_however_many_instances_serve_it(backend: Backend) {
    let first = TestServer::start_with(backend, |config| {
        config.login_attempts_per_address = NonZeroU32::new(4).unwrap();
    })
    .await;
    let second = first.another_instance().await;
    let usernames: Vec<String> = (0..8).map(|n| format!("guess-{n}")).collect();
    let spray = usernames.iter().enumerate().map(|(n, username)| {
        let server = if n % 2 == 0 { &first } else { &second };
        login_from(&server.http, server, username, "wrong-guess")
    });
    let outcomes = join_all(spray).await;
    let invalid = outcomes.iter().filter(|login| code(login) == "INVALID_CREDENTIALS").count();
    let limited = outcomes.iter().filter(|login| code(login) == "RATE_LIMITED").count();
    assert_eq!((invalid, limited), (4, 4), "{outcomes:?}");

    // Another address is not held back, on either instance.
    let elsewhere =
        reqwest::Client::builder().local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))).build().unwrap();
    for server in [&first, &second] {
        let admin = login_from(&elsewhere, server, "admin", ADMIN_PASSWORD).await;
        assert!(admin["token"].is_string(), "{admin}");
    }
    second.stop().await;
}

/// A spray of made-up usernames leaves a row each (and one for the address it came from),
/// kept only while it limits anything.
async fn allowances_are_forgotten_once_whole_again(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        // One attempt every 10 ms: whole again almost at once.
        config.login_attempts_per_account = NonZeroU32::new(6000).unwrap();
        config.login_attempts_per_address = NonZeroU32::new(6000).unwrap();
    })
    .await;
    for n in 0..3 {
        login_from(&server.http, &server, &format!("made-up-{n}"), "wrong-guess").await;
    }
    let stored = || login_allowance::Entity::find().count(server.db());
    assert_eq!(stored().await.unwrap(), 4, "three accounts and one address");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(auth::prune_login_allowances(server.db()).await.unwrap(), 4);
    assert_eq!(stored().await.unwrap(), 0);
}
