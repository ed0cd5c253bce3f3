use std::process::ExitCode;

use clap::Parser;

use agentdesk::{
    app,
    auth::PasswordHasher,
    config::{Cli, Command, Config, OrgCommand},
    db, directory, graphql, telemetry,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.config.log_format);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => app::run(cli.config).await.map_err(|e| e.to_string()),
        Command::Migrate => migrate(&cli.config).await,
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Org { command: OrgCommand::Create(args) } => create_org(&cli.config, args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("agentdesk: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config) -> Result<(), String> {
    let (db, _) = db::connect(&config.database_url, 1).await.map_err(|e| e.to_string())?;
    db::migrate(&db).await.map_err(|e| e.to_string())?;
    println!("Migrations applied.");
    Ok(())
}

async fn create_org(config: &Config, args: agentdesk::config::CreateOrgArgs) -> Result<(), String> {
    let (db, _) = db::connect(&config.database_url, 1).await.map_err(|e| e.to_string())?;
    db::migrate(&db).await.map_err(|e| e.to_string())?;
    let hasher = PasswordHasher::new(1);
    let generated = args.admin_password.is_none().then(agentdesk::auth::token::generate_password);
    let new = directory::service::NewOrganization {
        name: args.name,
        slug: args.slug,
        seat_limit: args.seats,
        admin_username: args.admin_username,
        admin_password: args.admin_password.or_else(|| generated.clone()).unwrap_or_default(),
    };
    let (organization, admin) =
        directory::service::create_organization(&db, &hasher, new).await.map_err(|e| e.to_string())?;
    println!("Created organization `{}` with ADMIN `{}`.", organization.slug, admin.username);
    if let Some(password) = generated {
        println!("Its password (shown only this once): {password}");
    }
    Ok(())
}
