//! Paths must already be in the one form the plugin writes before they are matched against the route
//! table. Theta's routers may normalise `//x`, `/./x`, `/a/../x`, `%69`, `;p=1`, `X` or a trailing `/`
//! into a route the host did not classify; refusing every such spelling costs nothing (the plugin never
//! sends one) and closes that whole class of ways around grants, prices and caps.

/// Why a path is not canonical, or `Ok` with its segments.
pub fn segments(path: &str) -> Result<Vec<&str>, String> {
    let refuse = |why: &str| Err(format!("path `{}` is not canonical: {why}", shown(path)));
    if !path.starts_with('/') {
        return refuse("it must start with `/`");
    }
    if path == "/" {
        return Ok(Vec::new());
    }
    if path.ends_with('/') {
        return refuse("it ends with `/`");
    }
    let mut out = Vec::new();
    for segment in path[1..].split('/') {
        if segment.is_empty() {
            return refuse("it has an empty segment (`//`)");
        }
        if segment == "." || segment == ".." {
            return refuse("it has a dot segment");
        }
        for (i, b) in segment.bytes().enumerate() {
            match b {
                b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'~' => {}
                b'A'..=b'Z' => {
                    // Upper case is allowed only inside identifiers (ids are case-sensitive); the
                    // route table decides which segments are literals (always lower case).
                }
                b'%' => {
                    let hex = segment.get(i + 1..i + 3).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(decoded)
                            if hex.bytes().all(|h| !h.is_ascii_lowercase())
                                && !is_unreserved(decoded)
                                && !matches!(decoded, b'/' | b'\\' | b'%' | b';' | b'.')
                                && !decoded.is_ascii_control() =>
                        {
                            // `%20` and friends: a reserved byte, escaped the one way the plugin does.
                        }
                        _ => {
                            return refuse(
                                "it has a `%` escape of an unreserved byte, `/`, `\\`, `%`, `;` or `.`, or a lower-case or broken escape",
                            );
                        }
                    }
                }
                b';' => return refuse("it has a `;` parameter"),
                b if b >= 0x80 => return refuse("it has non-ASCII bytes"),
                _ => return refuse("it has a character outside [A-Za-z0-9_.~%-]"),
            }
        }
        out.push(segment);
    }
    Ok(out)
}

/// RFC 3986 unreserved bytes: an escape of one of these is another spelling of the same path.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Query parameters that would change the method behind a proxy.
pub fn query_refusal(query: Option<&str>) -> Option<String> {
    let query = query?;
    query.split('&').find_map(|pair| {
        let key = pair.split('=').next().unwrap_or("");
        let decoded = key.to_ascii_lowercase().replace("%5f", "_");
        (decoded == "_method" || decoded.contains("method-override") || decoded == "x-http-method")
            .then(|| {
                format!(
                    "the query parameter `{}` overrides the method behind a proxy",
                    shown(key)
                )
            })
    })
}

fn shown(text: &str) -> String {
    crate::text::for_terminal(&text.chars().take(120).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugins_own_paths_are_canonical() {
        for p in [
            "/service/list",
            "/infer_request/qwen3",
            "/infer_request/infr_rqst_AbC.1",
            "/infer_request/chat/completions",
            "/deployment/list",
            "/chatbot/c%20x/document",
            "/",
        ] {
            assert!(segments(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn every_other_spelling_is_refused() {
        for p in [
            "//infer_request/x",
            "/./infer_request/x",
            "/service/../infer_request/x",
            "/%69nfer_request/x",
            "/infer_request%2Fx",
            "/infer_request%2fx",
            "/infer_request;p=1/x",
            "/infer_request/x/",
            "/infer_request/%2e%2e/x",
            "/infer_request/%2E",
            "/infer_request/%25",
            "/infer_request/%5C",
            "/infer_request/%0a",
            "/infer_request/%2",
            "/infer_request/\u{e9}",
            "/infer_request/a b",
            "/infer_request/a\\b",
            "/infer_request/a:b",
            "infer_request",
        ] {
            assert!(segments(p).is_err(), "{p} accepted");
        }
    }

    #[test]
    fn method_override_queries_are_refused() {
        assert!(query_refusal(Some("a=1&_method=DELETE")).is_some());
        assert!(query_refusal(Some("%5Fmethod=PUT")).is_some());
        assert!(query_refusal(Some("x-http-method-override=PUT")).is_some());
        assert!(query_refusal(Some("wait=30&prediction=x")).is_none());
        assert!(query_refusal(None).is_none());
    }
}
