//! What an outbound request is: which API family it belongs to (and so which credential it gets), and
//! whether it reads, mutates, or spends money. Decided from the method, host and path alone, so that a
//! hostile guest cannot talk its way into a cheaper class.

use crate::credentials::Family;
use http::Method;

/// The effect of a request, as in the WIT `effect` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Read,
    Mutate,
    Spend,
}

/// A classified request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    pub family: Family,
    pub effect: Effect,
    /// Whether the family's credential must be present for this request.
    pub needs_credential: bool,
}

/// Host names of the families with a fixed host.
pub const ONDEMAND_HOST: &str = "ondemand.thetaedgecloud.com";
pub const CONTROLLER_HOSTS: [&str; 3] = [
    "controller.thetaedgecloud.com",
    "api.thetaedgecloud.com",
    "controller-beta.thetaedgecloud.com",
];

/// Methods a guest may use at all.
pub fn method_allowed(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Classifies a request to an already allowlisted `host`.
pub fn classify(
    method: &Method,
    host: &str,
    path: &str,
    inference_host: Option<&str>,
) -> Classified {
    let read = *method == Method::GET || *method == Method::HEAD;
    let family = if host == ONDEMAND_HOST {
        Family::OnDemand
    } else if CONTROLLER_HOSTS.contains(&host) {
        Family::Controller
    } else if host == crate::policy::allowlist::VIDEO_API_HOST {
        Family::Video
    } else if inference_host == Some(host) {
        Family::DedicatedInference
    } else {
        Family::Public
    };
    let effect = if read {
        Effect::Read
    } else {
        match family {
            // Inference runs on paid workers; presigned upload URLs are free.
            Family::OnDemand if path.starts_with("/infer_request/") => {
                if path.ends_with("/input_presigned_urls") {
                    Effect::Mutate
                } else {
                    Effect::Spend
                }
            }
            // Stopping a deployment ends its billing; chatbots, documents and deletes are free.
            Family::Controller if path.ends_with("/stop") => Effect::Mutate,
            // Creating or starting a deployment bills by the hour.
            Family::Controller
                if *method == Method::POST
                    && (path == "/deployment"
                        || path == "/deployments"
                        || path.starts_with("/deployment/")
                        || path.starts_with("/deployments/")
                        || path.contains("/gpu-deployments")) =>
            {
                Effect::Spend
            }
            Family::Controller if path.ends_with("/start") => Effect::Spend,
            Family::DedicatedInference => Effect::Spend,
            // Encoding a video is billed; uploads, streams and ingestor selection are free.
            Family::Video if *method == Method::POST && path == "/video" => Effect::Spend,
            _ => Effect::Mutate,
        }
    };
    // The on-demand catalogue is public; everything else of a credentialed family needs its key.
    let needs_credential = match family {
        Family::OnDemand => !(read && path.starts_with("/service/")),
        Family::Controller => !(read && path.starts_with("/resource/vm/list")),
        Family::Video => true,
        Family::DedicatedInference | Family::Public => false,
    };
    Classified {
        family,
        effect,
        needs_credential,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ondemand_classes() {
        let c = classify(&Method::GET, ONDEMAND_HOST, "/service/list", None);
        assert_eq!(
            (c.family, c.effect, c.needs_credential),
            (Family::OnDemand, Effect::Read, false)
        );
        let c = classify(&Method::POST, ONDEMAND_HOST, "/infer_request/qwen3", None);
        assert_eq!((c.effect, c.needs_credential), (Effect::Spend, true));
        let c = classify(
            &Method::POST,
            ONDEMAND_HOST,
            "/infer_request/flux/input_presigned_urls",
            None,
        );
        assert_eq!(c.effect, Effect::Mutate);
        let c = classify(
            &Method::GET,
            ONDEMAND_HOST,
            "/infer_request/infr_rqst_1",
            None,
        );
        assert_eq!((c.effect, c.needs_credential), (Effect::Read, true));
    }

    #[test]
    fn controller_video_and_endpoint_classes() {
        let c = |m: &Method, host: &str, path: &str| {
            let c = classify(m, host, path, Some("x.tec-s1.onthetaedgecloud.com"));
            (c.family, c.effect, c.needs_credential)
        };
        let ctl = CONTROLLER_HOSTS[0];
        assert_eq!(
            c(&Method::POST, ctl, "/deployment"),
            (Family::Controller, Effect::Spend, true)
        );
        assert_eq!(
            c(&Method::POST, ctl, "/deployments"),
            (Family::Controller, Effect::Spend, true)
        );
        assert_eq!(
            c(&Method::PUT, ctl, "/deployment/1/ab/start").1,
            Effect::Spend
        );
        assert_eq!(
            c(&Method::POST, ctl, "/deployment/1/ab/stop").1,
            Effect::Mutate
        );
        assert_eq!(
            c(&Method::DELETE, ctl, "/deployment/1/ab").1,
            Effect::Mutate
        );
        assert_eq!(c(&Method::GET, ctl, "/deployment/list").1, Effect::Read);
        assert_eq!(
            c(&Method::POST, ctl, "/deployment_template/x").1,
            Effect::Mutate
        );
        assert_eq!(c(&Method::POST, ctl, "/chatbot").1, Effect::Mutate);
        assert_eq!(
            c(&Method::PUT, ctl, "/chatbot/c1/document/d1").1,
            Effect::Mutate
        );
        assert_eq!(
            c(&Method::GET, "api.thetaedgecloud.com", "/balance"),
            (Family::Controller, Effect::Read, true)
        );
        assert!(!c(&Method::GET, "api.thetaedgecloud.com", "/resource/vm/list").2);
        let v = crate::policy::allowlist::VIDEO_API_HOST;
        assert_eq!(
            c(&Method::POST, v, "/video"),
            (Family::Video, Effect::Spend, true)
        );
        assert_eq!(c(&Method::POST, v, "/upload").1, Effect::Mutate);
        assert_eq!(c(&Method::POST, v, "/stream").1, Effect::Mutate);
        assert_eq!(c(&Method::PUT, v, "/ingestor/i/select").1, Effect::Mutate);
        assert_eq!(
            c(&Method::GET, v, "/video/v1"),
            (Family::Video, Effect::Read, true)
        );
        let e = "x.tec-s1.onthetaedgecloud.com";
        assert_eq!(
            c(&Method::GET, e, "/v1/models"),
            (Family::DedicatedInference, Effect::Read, false)
        );
        assert_eq!(c(&Method::POST, e, "/v1/chat/completions").1, Effect::Spend);
        // A disposable deployment's own endpoint: only reads are needed (readiness probes).
        assert_eq!(
            c(&Method::GET, "y.tec-s1.onthetaedgecloud.com", "/config").0,
            Family::Public
        );
    }

    #[test]
    fn other_hosts_get_no_credential() {
        let c = classify(
            &Method::GET,
            "ondemand-outputs.thetaedgecloud.com",
            "/x.jpg",
            None,
        );
        assert_eq!(c.family, Family::Public);
        let c = classify(
            &Method::POST,
            "x.tec-s1.onthetaedgecloud.com",
            "/v1/chat/completions",
            Some("x.tec-s1.onthetaedgecloud.com"),
        );
        assert_eq!(
            (c.family, c.effect),
            (Family::DedicatedInference, Effect::Spend)
        );
    }
}
