//! The operator's commands, run as the real binary beside a running server on its database:
//! `agentdesk org list` and `agentdesk org update`.

use std::{
    process::{Command, Output},
    time::Duration,
};

use serde_json::{Value, json};

use crate::{
    common::{
        Backend, TestServer,
        ws::{Protocol, WsClient},
    },
    directory_live::wait_until_live,
};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![the_operator_lists_organizations_and_changes_seats_and_the_service]
}

/// Runs `agentdesk <args>` on the server's database.
async fn agentdesk(server: &TestServer, args: &[&str]) -> Output {
    let database_url = server.database_url();
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_agentdesk"))
            .args(&args)
            .args(["--database-url", &database_url])
            .env("USER", "ops")
            .output()
            .expect("the agentdesk binary runs")
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn the_operator_lists_organizations_and_changes_seats_and_the_service(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    server.create_organization("acme", 10, "boss", "boss-password").await;
    let listed = agentdesk(&server, &["org", "list"]).await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let lines = stdout(&listed);
    assert!(
        lines
            .lines()
            .any(|line| line.starts_with("acme ") && line.contains(" 1/10") && line.ends_with("enabled")),
        "{lines}"
    );
    assert!(lines.lines().any(|line| line.starts_with("demo ") && line.contains(" 1/25")), "{lines}");

    // Bad input: exit code 2, a message that says what is wrong, nothing changed.
    for (args, says) in [
        (vec!["--slug", "demo", "--seats", "0"], "seat limit"),
        (vec!["--slug", "demo", "--seats", "-3"], "seat limit"),
        (vec!["--slug", "demo", "--seats", "100001"], "seat limit"),
        (vec!["--slug", "nope", "--seats", "5"], "no organization"),
        (vec!["--slug", "demo", "--name", " "], "name"),
        (vec!["--slug", "demo", "--human-agent-service", "maybe"], "human-agent-service"),
    ] {
        let refused = agentdesk(&server, &[&["org", "update"], args.as_slice()].concat()).await;
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {}", stderr(&refused));
        assert!(stderr(&refused).to_lowercase().contains(says), "{args:?}: {}", stderr(&refused));
    }
    let usage = "{ usage { agentQuota { used limit remaining nearLimit } } organization { name humanAgentServiceEnabled } }";
    let before = server.gql(Some(&admin), usage, json!({})).await.data();
    assert_eq!(before["usage"]["agentQuota"]["limit"], 25);

    // Seats below those in use: allowed, said so; creating agents is then refused.
    server.seed_agents("demo", "seat", 2).await;
    let lowered =
        agentdesk(&server, &["org", "update", "--slug", "demo", "--seats", "2", "--name", "Demo Inc"]).await;
    assert!(lowered.status.success(), "{}", stderr(&lowered));
    assert!(stdout(&lowered).contains("3 of 2 seats used"), "{}", stdout(&lowered));
    assert!(stdout(&lowered).contains("until 1 are deleted"), "{}", stdout(&lowered));
    let after = server.gql(Some(&admin), usage, json!({})).await.data();
    assert_eq!(
        after["usage"]["agentQuota"],
        json!({ "used": 3, "limit": 2, "remaining": 0, "nearLimit": true })
    );
    assert_eq!(after["organization"]["name"], "Demo Inc");
    let create = "mutation { createAgent(input: { displayName: \"N\", username: \"newbie\", password: \"password1\" }) { userErrors { code } } }";
    let refused = server.gql(Some(&admin), create, json!({})).await.data();
    assert_eq!(refused["createAgent"]["userErrors"][0]["code"], "SEAT_LIMIT_REACHED");

    // The service switch: at once, for every request, and open pages hear of it (on
    // PostgreSQL the command's NOTIFY reaches every instance, this one on another instance).
    let other = match backend {
        Backend::Postgres => Some(server.another_instance().await),
        Backend::Sqlite => None,
    };
    let mut socket =
        WsClient::connect(other.as_ref().unwrap_or(&server), Protocol::TransportWs, Some(&admin))
            .await
            .expect("acknowledged");
    socket.subscribe("d", "subscription { agentDirectoryChanged { kind agentId } }", json!({})).await;
    wait_until_live(&server, &admin, &mut socket).await;
    let off =
        agentdesk(&server, &["org", "update", "--slug", "demo", "--human-agent-service", "disabled"]).await;
    assert!(off.status.success(), "{}", stderr(&off));
    assert!(stdout(&off).contains("human-agent service disabled"), "{}", stdout(&off));
    let now = server.gql(Some(&admin), usage, json!({})).await.data();
    assert_eq!(now["organization"]["humanAgentServiceEnabled"], false);
    let queue = "mutation { createQueue(input: { name: \"Later\" }) { userErrors { code } } }";
    let refused = server.gql(Some(&admin), queue, json!({})).await.data();
    assert_eq!(refused["createQueue"]["userErrors"][0]["code"], "HUMAN_AGENT_SERVICE_DISABLED");
    if backend == Backend::Postgres {
        // Every agent of the organization is announced (its eligibility changed).
        let events = socket.results_within("d", Duration::from_secs(2)).await;
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(events.iter().all(|event| event["data"]["agentDirectoryChanged"]["kind"] == "UPDATED"));
    }
    let on =
        agentdesk(&server, &["org", "update", "--slug", "demo", "--human-agent-service", "enabled"]).await;
    assert!(on.status.success(), "{}", stderr(&on));
    let allowed = server.gql(Some(&admin), queue, json!({})).await.data();
    assert_eq!(allowed["createQueue"]["userErrors"], json!([]));

    // Audited as the operator's, not an agent's.
    let audit = server
        .gql(
            Some(&admin),
            "{ auditLog(filter: { action: ORGANIZATION_UPDATED }) { nodes { actor { id } actorUsername targetType changedFields } } }",
            json!({}),
        )
        .await
        .data();
    let entries = audit["auditLog"]["nodes"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{audit}");
    assert!(
        entries
            .iter()
            .all(|entry| entry["actor"] == Value::Null && entry["actorUsername"] == "operator (ops)")
    );
    assert!(entries.iter().all(|entry| entry["targetType"] == "ORGANIZATION"));
    assert!(entries.iter().any(|entry| entry["changedFields"] == json!(["name", "seatLimit"])), "{audit}");
    // The other organization was never touched.
    let acme = stdout(&agentdesk(&server, &["org", "list"]).await);
    assert!(
        acme.lines()
            .any(|line| line.starts_with("acme ") && line.contains(" 1/10") && line.ends_with("enabled")),
        "{acme}"
    );
    if let Some(other) = other {
        other.stop().await;
    }
}
