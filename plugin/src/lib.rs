//! Theta EdgeCloud commands as a WebAssembly component (world `theta:edgecloud/plugin`).
//!
//! This file is only the glue: it generates the bindings (WASI types come from the `wasip2` crate) and
//! converts between WIT types and the domain types of the modules below, which hold all the logic and
//! do not depend on the transport.
//!
//! With the `ironclaw` feature the same commands are built for IronClaw's `near:agent/sandboxed-tool`
//! world instead: the glue below is left out and [`ironclaw`] exports the tool (see `tool_shim`).

pub mod client;
pub mod commands;
pub mod config;
pub mod error;
pub mod events;
pub mod sse;
pub mod tool_shim;
pub mod transport;
#[cfg(not(any(feature = "ironclaw", feature = "commands-only")))]
mod typed;
#[cfg(test)]
mod wassette_policies;

#[cfg(feature = "ironclaw")]
pub mod ironclaw;
// The IronClaw extension package generator (tests, examples/ironclaw-package.rs): never in a component.
#[cfg(not(target_arch = "wasm32"))]
pub mod ironclaw_package;

#[cfg(not(any(feature = "ironclaw", feature = "commands-only")))]
wit_bindgen::generate!({
    path: "../wit",
    world: "theta:edgecloud/plugin",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:cli/environment@0.2.12": wasip2::cli::environment,
        "wasi:cli/stderr@0.2.12": wasip2::cli::stderr,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
    },
});

// `--features commands-only` (the small Wassette artifact): only `describe` / `invoke`, world
// `command-plugin`, so an MCP host lists two tools instead of one per typed function.
#[cfg(all(feature = "commands-only", not(feature = "ironclaw")))]
wit_bindgen::generate!({
    path: "../wit",
    world: "theta:edgecloud/command-plugin",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:cli/environment@0.2.12": wasip2::cli::environment,
        "wasi:cli/stderr@0.2.12": wasip2::cli::stderr,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
    },
});

#[cfg(not(feature = "ironclaw"))]
use client::Ctx;
#[cfg(not(any(feature = "ironclaw", feature = "commands-only")))]
use commands::{ToJson, chat, ondemand, upload};
#[cfg(not(feature = "ironclaw"))]
use exports::theta::edgecloud::commands as wit_commands;
#[cfg(not(any(feature = "ironclaw", feature = "commands-only")))]
use exports::theta::edgecloud::ondemand as wit;
#[cfg(not(feature = "ironclaw"))]
use exports::theta::edgecloud::types as wit_types;

#[cfg(not(feature = "ironclaw"))]
struct Plugin;
// Exported symbols are named `theta:edgecloud/...`, which native linkers refuse; native builds exist
// only for unit tests, so only the wasm build exports.
#[cfg(all(target_arch = "wasm32", not(feature = "ironclaw")))]
export!(Plugin);

#[cfg(not(feature = "ironclaw"))]
/// Runs `f` with the configuration from the environment, `wasi:http` and stderr events.
fn with_ctx<T>(f: impl FnOnce(&Ctx) -> error::Result<T>) -> Result<T, wit_types::ThetaError> {
    let config = config::Config::load().map_err(to_wit_error)?;
    let ctx = Ctx {
        config: &config,
        transport: &transport::wasi_http::WasiHttp,
        events: &events::StderrEvents,
    };
    f(&ctx).map_err(to_wit_error)
}

#[cfg(not(feature = "ironclaw"))]
fn to_wit_error(e: error::ThetaError) -> wit_types::ThetaError {
    use error::ThetaError as E;
    use wit_types::ThetaError as W;
    match e {
        E::InvalidArgument { field, reason } => {
            W::InvalidArgument(wit_types::InvalidArgument { field, reason })
        }
        E::MissingCredential { variable, hint } => {
            W::MissingCredential(wit_types::MissingCredential { variable, hint })
        }
        E::Denied { reason } => W::Denied(reason),
        E::DryRun { preview } => W::DryRun(wit_types::RequestPreview {
            method: preview.method,
            url: preview.url,
            headers: preview.headers,
            body: preview.body,
        }),
        E::Upstream {
            status,
            message,
            retriable,
        } => W::Upstream(wit_types::UpstreamError {
            status,
            message,
            retriable,
        }),
        E::CapacityExhausted {
            service,
            attempts,
            message,
        } => W::CapacityExhausted(wit_types::CapacityExhausted {
            service,
            attempts,
            message,
        }),
        E::Timeout { message } => W::Timeout(message),
        E::Transport { message } => W::Transport(message),
    }
}

#[cfg(not(any(feature = "ironclaw", feature = "commands-only")))]
fn category_to_wit(c: ondemand::Category) -> wit::ServiceCategory {
    use ondemand::Category as C;
    match c {
        C::Image => wit::ServiceCategory::Image,
        C::Audio => wit::ServiceCategory::Audio,
        C::Text => wit::ServiceCategory::Text,
        C::Video => wit::ServiceCategory::Video,
        C::Vision => wit::ServiceCategory::Vision,
        C::Other => wit::ServiceCategory::Other,
    }
}

#[cfg(not(any(feature = "ironclaw", feature = "commands-only")))]
fn category_from_wit(c: wit::ServiceCategory) -> ondemand::Category {
    use ondemand::Category as C;
    match c {
        wit::ServiceCategory::Image => C::Image,
        wit::ServiceCategory::Audio => C::Audio,
        wit::ServiceCategory::Text => C::Text,
        wit::ServiceCategory::Video => C::Video,
        wit::ServiceCategory::Vision => C::Vision,
        wit::ServiceCategory::Other => C::Other,
    }
}

#[cfg(not(any(feature = "ironclaw", feature = "commands-only")))]
fn infer_request_to_wit(r: ondemand::InferRequest) -> wit::InferRequest {
    wit::InferRequest {
        id: r.id,
        state: r.state,
        service_id: r.service_id,
        output: r.output.map(|o| o.to_string()),
        error_message: r.error_message,
        cost_usd: r.cost_usd,
        create_time: r.create_time,
        update_time: r.update_time,
    }
}

#[cfg(not(any(feature = "ironclaw", feature = "commands-only")))]
impl wit::Guest for Plugin {
    fn list_services(
        category: Option<wit::ServiceCategory>,
    ) -> Result<Vec<wit::ServiceSummary>, wit_types::ThetaError> {
        let services =
            with_ctx(|ctx| ondemand::list_services(ctx, category.map(category_from_wit)))?;
        Ok(services
            .into_iter()
            .map(|s| wit::ServiceSummary {
                alias: s.alias,
                name: s.name,
                category: category_to_wit(s.category),
                default_prediction: s.default_prediction,
                predictions: s.predictions,
                variants: s.variants,
                input_fields: s.input_fields,
                description: s.description,
            })
            .collect())
    }

    fn infer(args: wit::InferArgs) -> Result<wit::InferRequest, wit_types::ThetaError> {
        with_ctx(|ctx| {
            let input = match serde_json::from_slice::<serde_json::Value>(args.input.as_bytes()) {
                Ok(serde_json::Value::Object(map)) => map,
                Ok(_) => {
                    return Err(error::ThetaError::invalid(
                        "input",
                        "expected a JSON object",
                    ));
                }
                Err(e) => {
                    return Err(error::ThetaError::invalid(
                        "input",
                        format!("not valid JSON: {e}"),
                    ));
                }
            };
            ondemand::infer(
                ctx,
                ondemand::InferArgs {
                    service: args.service,
                    input,
                    wait: args.wait,
                    prediction: args.prediction,
                    variant: args.variant,
                    webhook: args.webhook,
                    poll_until_done: args.poll_until_done,
                    poll_timeout_seconds: args.poll_timeout_seconds,
                },
            )
        })
        .map(infer_request_to_wit)
    }

    fn get_request_status(request_id: String) -> Result<wit::InferRequest, wit_types::ThetaError> {
        with_ctx(|ctx| ondemand::get_request_status(ctx, &request_id)).map(infer_request_to_wit)
    }

    fn get_upload_url(
        service: String,
        input_fields: Vec<String>,
        prediction: Option<String>,
    ) -> Result<Vec<wit::UploadUrl>, wit_types::ThetaError> {
        let urls = with_ctx(|ctx| {
            ondemand::get_upload_url(ctx, &service, &input_fields, prediction.as_deref())
        })?;
        Ok(urls
            .into_iter()
            .map(|u| wit::UploadUrl {
                field: u.field,
                upload_url: u.upload_url,
                filename: u.filename,
            })
            .collect())
    }

    fn upload(args: wit::UploadArgs) -> Result<wit::UploadedFile, wit_types::ThetaError> {
        let args = upload::UploadArgs {
            service: args.service,
            input_field: args.input_field,
            data: args.data,
            content_type: args.content_type,
            prediction: args.prediction,
        };
        let done = with_ctx(|ctx| upload::upload(ctx, args))?;
        let input = done.to_json()["input"].to_string();
        Ok(wit::UploadedFile {
            service: done.service,
            input_field: done.input_field,
            filename: done.filename,
            uploaded_bytes: done.uploaded_bytes,
            input,
        })
    }

    fn chat(args: wit::ChatArgs) -> Result<wit::ChatReply, wit_types::ThetaError> {
        let args = chat::ChatArgs {
            messages: typed::chat_messages(args.messages),
            service: args.service,
            variant: args.variant,
            max_tokens: args.max_tokens,
            temperature: args.temperature,
            top_p: args.top_p,
            reasoning_effort: args.reasoning_effort,
            stream: args.stream,
            wait: args.wait,
        };
        with_ctx(|ctx| chat::chat(ctx, args)).map(typed::chat_reply)
    }
}

#[cfg(not(feature = "ironclaw"))]
impl wit_commands::Guest for Plugin {
    fn describe() -> Vec<wit_commands::CommandInfo> {
        commands::describe()
            .into_iter()
            .map(|c| wit_commands::CommandInfo {
                name: c.name,
                summary: c.summary,
                args_schema: c.args_schema,
                effect: match c.effect {
                    commands::Effect::Read => wit_types::Effect::Read,
                    commands::Effect::Mutate => wit_types::Effect::Mutate,
                    commands::Effect::Spend => wit_types::Effect::Spend,
                },
                credentials: c.credentials,
            })
            .collect()
    }

    fn invoke(name: String, args_json: String) -> Result<String, wit_types::ThetaError> {
        with_ctx(|ctx| commands::invoke(ctx, &name, &args_json))
    }
}
