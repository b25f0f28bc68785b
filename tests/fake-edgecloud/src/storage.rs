//! The storage host of presigned upload URLs (`storage.googleapis.com`, theta-api-sources.md §5):
//! `PUT /{bucket}/{object}?X-Goog-...&X-Goog-Signature=...` with a signature the on-demand family
//! issued stores the bytes under the object's name; anything else is refused in GCS's XML error
//! shape. `infer` then finds the file by that name.

use crate::reply::Reply;
use crate::server::Shared;
use crate::state::RecordedRequest;

/// The storage host name.
pub const STORAGE_HOST: &str = "storage.googleapis.com";
/// The bucket the fake's presigned URLs point into.
pub(crate) const BUCKET: &str = "theta-fake-uploads";

/// GCS's error body: `<Error><Code>…</Code><Message>…</Message></Error>`.
fn xml_error(status: u16, code: &str, message: &str) -> Reply {
    let body = format!(
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    Reply::raw(status, "application/xml; charset=UTF-8", body)
}

pub(crate) fn handle(req: &RecordedRequest, shared: &Shared) -> Reply {
    let object = req
        .path
        .strip_prefix(&format!("/{BUCKET}/"))
        .filter(|o| !o.is_empty() && !o.contains('/'));
    let Some(object) = object else {
        return xml_error(404, "NoSuchBucket", "The specified bucket does not exist.");
    };
    if req.method != "PUT" {
        return xml_error(
            403,
            "AccessDenied",
            "Access denied: the signed URL is for PUT only.",
        );
    }
    // A signed URL carries its own authentication; GCS refuses a request that brings a second one.
    if req.header("authorization").is_some() {
        return xml_error(
            400,
            "InvalidArgument",
            "Multiple authentication methods are not allowed: send either a signed URL or an Authorization header.",
        );
    }
    let Some(signature) = req.query_param("X-Goog-Signature") else {
        return xml_error(
            403,
            "AccessDenied",
            "Anonymous caller does not have storage.objects.create access to the Google Cloud Storage object.",
        );
    };
    if !shared
        .state
        .accept_upload(object, &signature, req.body.clone())
    {
        return xml_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your Google secret key and signing method.",
        );
    }
    Reply::raw(200, "text/html; charset=UTF-8", "")
}
