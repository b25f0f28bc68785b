//! `fake-edgecloud`: serve the fake on loopback until killed.
//!
//! ```text
//! fake-edgecloud [--port N] [--token T] [--sse-split N] [--polls-until-done N] [--token-delay-ms N]
//! ```

use fake_edgecloud::{FakeConfig, FakeEdgeCloud};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

const USAGE: &str = "usage: fake-edgecloud [--port N] [--token T] [--sse-split N] [--polls-until-done N] [--token-delay-ms N]";

fn parse() -> anyhow::Result<(FakeConfig, u16)> {
    let mut config = FakeConfig::default();
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| anyhow::anyhow!("{flag}: `{value}` is not a number"))
        };
        match flag.as_str() {
            "--port" => port = u16::try_from(number()?)?,
            "--token" => config.ondemand_token = value.clone(),
            "--sse-split" => config.sse_split = Some(usize::try_from(number()?)?),
            "--polls-until-done" => config.polls_until_done = u32::try_from(number()?)?,
            "--token-delay-ms" => config.token_delay = Duration::from_millis(number()?),
            _ => anyhow::bail!("unknown flag {flag}\n{USAGE}"),
        }
    }
    Ok((config, port))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, port) = parse()?;
    let fake = FakeEdgeCloud::start_on(config, SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("listening on {}", fake.base_url());
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    Ok(())
}
