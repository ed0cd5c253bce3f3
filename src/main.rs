use std::process::ExitCode;

use clap::Parser;

use agentdesk::{
    api, app,
    auth::PasswordHasher,
    config::{Cli, Command, Config, OrgCommand, ServiceSwitch, UpdateOrgArgs},
    db,
    directory::{
        self,
        error::DirectoryError,
        service::{OrganizationChanges, OrganizationOverview},
    },
    events::EventBus,
    telemetry,
};

/// Why a command failed: what the operator gave (exit code 2, as for a flag clap refuses), or
/// anything else (exit code 1).
enum Failure {
    Input(String),
    Other(String),
}

impl Failure {
    fn other(error: impl ToString) -> Self {
        Failure::Other(error.to_string())
    }
}

impl From<DirectoryError> for Failure {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::Database(_) | DirectoryError::Hashing(_) => Failure::other(error),
            input => Failure::Input(input.to_string()),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.config.log_format);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => app::run(cli.config).await.map_err(Failure::other),
        Command::Migrate => migrate(&cli.config).await,
        Command::Schema => {
            print!("{}", api::sdl());
            Ok(())
        }
        Command::Org { command: OrgCommand::Create(args) } => create_org(&cli.config, args).await,
        Command::Org { command: OrgCommand::List } => list_orgs(&cli.config).await,
        Command::Org { command: OrgCommand::Update(args) } => update_org(&cli.config, args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(message)) => {
            eprintln!("agentdesk: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Other(message)) => {
            eprintln!("agentdesk: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The database, migrated: every command works on the current schema.
async fn database(config: &Config) -> Result<sea_orm::DatabaseConnection, Failure> {
    let (db, _) = db::connect(&config.database_url, 1).await.map_err(Failure::other)?;
    db::migrate(&db).await.map_err(Failure::other)?;
    Ok(db)
}

async fn migrate(config: &Config) -> Result<(), Failure> {
    database(config).await?;
    println!("Migrations applied.");
    Ok(())
}

fn service_text(enabled: bool) -> &'static str {
    if enabled { "enabled" } else { "disabled" }
}

async fn list_orgs(config: &Config) -> Result<(), Failure> {
    let db = database(config).await?;
    let organizations = directory::service::list_organizations(&db).await.map_err(Failure::other)?;
    println!("{:<24} {:<32} {:>13}  human-agent service", "slug", "name", "seats");
    for OrganizationOverview { organization, seats_used } in organizations {
        let seats = format!("{seats_used}/{}", organization.seat_limit);
        let service = service_text(organization.human_agent_service_enabled);
        println!("{:<24} {:<32} {seats:>13}  {service}", organization.slug, organization.name);
    }
    Ok(())
}

/// Publishes on the cluster's bus like a server instance, so running instances hear of the
/// change (on PostgreSQL; a SQLite server reads the switch on every request).
async fn update_org(config: &Config, args: UpdateOrgArgs) -> Result<(), Failure> {
    let db = database(config).await?;
    let bus = EventBus::start(&db, &config.database_url, app::event_kinds()).await.map_err(Failure::other)?;
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let changes = OrganizationChanges {
        slug: args.slug,
        name: args.name,
        seat_limit: args.seats,
        human_agent_service_enabled: args.human_agent_service.map(|switch| switch == ServiceSwitch::Enabled),
    };
    let OrganizationOverview { organization, seats_used } =
        directory::service::update_organization(&db, &bus, &operator, changes).await?;
    let limit = u64::try_from(organization.seat_limit).unwrap_or(0);
    println!(
        "Updated organization `{}` ({}): {seats_used} of {limit} seats used; human-agent service {}.",
        organization.slug,
        organization.name,
        service_text(organization.human_agent_service_enabled)
    );
    if seats_used > limit {
        println!(
            "More seats are in use than the limit allows: creating agents is refused until {} are deleted.",
            seats_used - limit
        );
    }
    Ok(())
}

async fn create_org(config: &Config, args: agentdesk::config::CreateOrgArgs) -> Result<(), Failure> {
    let db = database(config).await?;
    let hasher = PasswordHasher::new(1);
    let generated = args.admin_password.is_none().then(agentdesk::auth::token::generate_password);
    let new = directory::service::NewOrganization {
        name: args.name,
        slug: args.slug,
        seat_limit: args.seats,
        admin_username: args.admin_username,
        admin_password: args.admin_password.or_else(|| generated.clone()).unwrap_or_default(),
    };
    let (organization, admin) = directory::service::create_organization(&db, &hasher, new).await?;
    println!("Created organization `{}` with ADMIN `{}`.", organization.slug, admin.card.username);
    if let Some(password) = generated {
        println!("Its password (shown only this once): {password}");
    }
    Ok(())
}
