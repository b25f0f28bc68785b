//! JSON-RPC conformance around the SDK's stdio transport.
//!
//! `rmcp` drops a line it cannot decode (no answer at all) and answers a `tools/call` whose params do
//! not decode with "method not found". The spec asks for `-32700` (parse error) for unparseable JSON,
//! `-32600` for something that is not a request, and `-32602` (invalid params) for a `tools/call`
//! without a name or with non-object arguments. So every stdin line is checked here first: good lines
//! go on to the SDK unchanged, bad ones are answered here, on the same stdout, one line at a time.

use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// JSON-RPC error codes.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;

/// Room in the pipes between this layer and the SDK.
const PIPE: usize = 1 << 20;

/// Checks one line from the client: `Ok` to pass it to the SDK, `Err(Some(answer))` to answer it
/// here, `Err(None)` to drop it (an invalid notification gets no answer).
pub fn check(line: &str) -> Result<(), Option<Value>> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        Some(error(
            Value::Null,
            PARSE_ERROR,
            &format!("Parse error: {e}"),
        ))
    })?;
    let Value::Object(msg) = &value else {
        return Err(Some(error(
            Value::Null,
            INVALID_REQUEST,
            "Invalid Request: expected a JSON-RPC 2.0 message object (batches are not supported)",
        )));
    };
    let id = msg.get("id").cloned();
    let answer = |code: i64, message: &str| id.as_ref().map(|id| error(id.clone(), code, message));
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Some(error(
            id.clone().unwrap_or(Value::Null),
            INVALID_REQUEST,
            "Invalid Request: `jsonrpc` must be \"2.0\"",
        )));
    }
    let method = match msg.get("method") {
        // A response to one of the server's requests.
        None if id.is_some() && (msg.contains_key("result") || msg.contains_key("error")) => {
            return Ok(());
        }
        Some(Value::String(m)) => m.as_str(),
        _ => {
            return Err(answer(
                INVALID_REQUEST,
                "Invalid Request: expected a string `method`",
            ));
        }
    };
    if method == "tools/call" {
        let params = msg.get("params");
        let problem = match params {
            Some(Value::Object(p)) => match (p.get("name"), p.get("arguments")) {
                (Some(Value::String(n)), _) if n.is_empty() => Some("`name` is empty"),
                (Some(Value::String(_)), None | Some(Value::Null | Value::Object(_))) => None,
                (Some(Value::String(_)), Some(_)) => {
                    Some("`arguments` must be an object of the tool's arguments")
                }
                (None, _) => Some("`name` is required: the tool to call"),
                (Some(_), _) => Some("`name` must be a string"),
            },
            _ => Some("`params` must be an object with `name` and `arguments`"),
        };
        if let Some(problem) = problem {
            return Err(answer(
                INVALID_PARAMS,
                &format!("Invalid params for tools/call: {problem}"),
            ));
        }
    }
    Ok(())
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The SDK's ends of the checked stdio: it reads `reader` and writes `writer`; `done` finishes once
/// everything the SDK wrote has reached stdout (after the SDK dropped `writer`).
pub struct CheckedStdio {
    pub reader: DuplexStream,
    pub writer: DuplexStream,
    pub done: JoinHandle<()>,
}

/// Checked stdin/stdout for the SDK.
pub fn checked_stdio() -> CheckedStdio {
    checked(tokio::io::stdin(), tokio::io::stdout())
}

/// The same over any byte streams (tests).
pub fn checked<I, O>(input: I, output: O) -> CheckedStdio
where
    I: tokio::io::AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin + Send + 'static,
{
    let (mut to_sdk, reader) = tokio::io::duplex(PIPE);
    let (writer, from_sdk) = tokio::io::duplex(PIPE);
    let (answers, mut answered) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        let mut input = BufReader::new(input);
        let mut line = Vec::new();
        loop {
            line.clear();
            match input.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match check(text) {
                Ok(()) => {
                    let mut out = text.as_bytes().to_vec();
                    out.push(b'\n');
                    if to_sdk.write_all(&out).await.is_err() {
                        break;
                    }
                }
                Err(Some(answer)) => {
                    tracing::info!("answered a malformed JSON-RPC line: {}", answer["error"]);
                    let _ = answers.send(answer);
                }
                Err(None) => tracing::info!("dropped a malformed JSON-RPC notification"),
            }
        }
        // EOF for the SDK: it ends the session.
        let _ = to_sdk.shutdown().await;
    });
    let done = tokio::spawn(async move {
        let mut output = output;
        let mut from_sdk = BufReader::new(from_sdk);
        let mut line = Vec::new();
        let mut answers_open = true;
        loop {
            line.clear();
            tokio::select! {
                read = from_sdk.read_until(b'\n', &mut line) => {
                    match read {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            if !line.ends_with(b"\n") {
                                line.push(b'\n');
                            }
                            if output.write_all(&line).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                answer = answered.recv(), if answers_open => {
                    match answer {
                        Some(answer) => {
                            let mut out = answer.to_string().into_bytes();
                            out.push(b'\n');
                            if output.write_all(&out).await.is_err() {
                                break;
                            }
                        }
                        None => answers_open = false,
                    }
                }
            }
            let _ = output.flush().await;
        }
        let _ = output.flush().await;
    });
    CheckedStdio {
        reader,
        writer,
        done,
    }
}

/// Waits (a bounded time) until the SDK's last lines are on stdout.
pub async fn drain(done: JoinHandle<()>) {
    let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> Option<i64> {
        match check(line) {
            Ok(()) => None,
            Err(Some(v)) => v["error"]["code"].as_i64(),
            Err(None) => Some(0),
        }
    }

    #[test]
    fn lines_are_checked_as_the_spec_asks() {
        assert_eq!(code("{not json"), Some(PARSE_ERROR));
        assert_eq!(code("[1, 2]"), Some(INVALID_REQUEST));
        assert_eq!(code("42"), Some(INVALID_REQUEST));
        assert_eq!(
            code(r#"{"id": 1, "method": "ping"}"#),
            Some(INVALID_REQUEST)
        );
        let call = |params: &str| {
            format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{params}}}"#)
        };
        assert_eq!(code(&call(r#"{"arguments": {}}"#)), Some(INVALID_PARAMS));
        assert_eq!(
            code(&call(r#"{"name": "infer", "arguments": [1]}"#)),
            Some(INVALID_PARAMS)
        );
        assert_eq!(code(&call(r#"{"name": 3}"#)), Some(INVALID_PARAMS));
        assert_eq!(code(&call("[]")), Some(INVALID_PARAMS));
        assert_eq!(code(&call(r#"{"name": "infer", "arguments": {}}"#)), None);
        assert_eq!(code(&call(r#"{"name": "infer"}"#)), None);
        let Err(Some(answer)) = check(&call("{}")) else {
            panic!()
        };
        assert_eq!(answer["id"], 7);
        // A bad notification is dropped, a response passes.
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","method":"tools/call","params":{}}"#),
            Some(0)
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
    }
}
