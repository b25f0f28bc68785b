//! Presigned upload URLs: the on-demand API answers an upload-URL request with URLs on a storage host
//! outside Theta's domains, each carrying its own signature. A call may PUT to exactly such a URL,
//! byte for byte, once, and only after the answer of the same call named it; the storage host is
//! reachable for nothing else. The URLs are single-use grants kept in the call's state.

use http::Uri;
use serde_json::Value;

/// The storage host Theta's presigned upload URLs point at (Google Cloud Storage).
pub const STORAGE_HOST: &str = "storage.googleapis.com";

/// The command that owns the PUT to a granted URL.
pub const UPLOAD_COMMAND: &str = "theta.ondemand.upload";

/// The one spelling a granted URL is compared in: `https://host/path?query`, host lower case, no
/// default port. `None` for anything that is not a plain HTTPS URL on the storage host.
pub fn canonical_url(uri: &Uri) -> Option<String> {
    if uri.scheme_str() != Some("https") {
        return None;
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || authority.port_u16().is_some_and(|p| p != 443) {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    if host != STORAGE_HOST {
        return None;
    }
    let pq = uri.path_and_query()?.as_str();
    Some(format!("https://{host}{pq}"))
}

/// Whether `uri` names the storage host (whatever else it says).
pub fn is_storage_host(uri: &Uri) -> bool {
    uri.host()
        .is_some_and(|h| h.eq_ignore_ascii_case(STORAGE_HOST))
}

/// The presigned URLs in an upload-URL answer, canonical, in both shapes seen:
/// `{field: {presigned_url, filename}}` (live) and `{urls: {field: {upload_url, filename}}}`
/// (official MCP), with or without the `{status, body}` envelope.
pub fn granted_urls(answer: &Value) -> Vec<String> {
    let root = answer
        .get("body")
        .filter(|b| b.is_object())
        .unwrap_or(answer);
    let map = root.get("urls").filter(|u| u.is_object()).unwrap_or(root);
    let Some(entries) = map.as_object() else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for entry in entries.values() {
        let url = entry
            .get("presigned_url")
            .or_else(|| entry.get("upload_url"))
            .unwrap_or(entry)
            .as_str();
        if let Some(canonical) = url
            .and_then(|u| u.parse::<Uri>().ok())
            .as_ref()
            .and_then(canonical_url)
            && !out.contains(&canonical)
        {
            out.push(canonical);
        }
    }
    out
}

/// A URL as errors and the audit trail may show it: scheme, host and path, never the query (it
/// carries the signature).
pub fn shown(uri: &Uri) -> String {
    crate::text::for_terminal(&format!(
        "https://{}{}",
        uri.host().unwrap_or(""),
        uri.path().chars().take(200).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://storage.googleapis.com/b/f1?X-Goog-Signature=abc&X-Goog-Date=1";

    #[test]
    fn both_answer_shapes_grant_their_urls() {
        let live = json!({"status": "success", "body": {"audio_filename": {"presigned_url": URL, "filename": "f1"}}});
        let mcp = json!({"urls": {"image_filename": {"upload_url": URL, "filename": "f1"}}});
        assert_eq!(granted_urls(&live), vec![URL.to_owned()]);
        assert_eq!(granted_urls(&mcp), vec![URL.to_owned()]);
    }

    #[test]
    fn only_https_storage_urls_are_granted() {
        let answer = json!({
            "a": {"presigned_url": "http://storage.googleapis.com/b/x?s=1"},
            "b": {"presigned_url": "https://evil.example/b/x?s=1"},
            "c": {"presigned_url": "https://storage.googleapis.com:8443/b/x?s=1"},
            "d": {"presigned_url": "https://u@storage.googleapis.com/b/x?s=1"},
            "e": {"presigned_url": "https://STORAGE.googleapis.com:443/b/ok?s=1"},
        });
        assert_eq!(
            granted_urls(&answer),
            vec!["https://storage.googleapis.com/b/ok?s=1".to_owned()]
        );
    }

    #[test]
    fn the_shown_url_has_no_signature() {
        let uri: Uri = URL.parse().unwrap();
        assert_eq!(shown(&uri), "https://storage.googleapis.com/b/f1");
    }
}
