//! Which API a host name belongs to (and so which routes, credential and prices apply). What a request
//! *does* is decided by the route table (`routes`), never here.

use super::routes::Api;
use http::Method;

/// The effect of a request, as in the WIT `effect` enum; ordered from weakest to strongest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Read,
    Mutate,
    Spend,
}

impl Effect {
    /// As in tenant files, `theta-host commands` and the audit trail: read, mutate, spend.
    pub fn label(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Mutate => "mutate",
            Effect::Spend => "spend",
        }
    }

    /// As in grants and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Mutate => "mutating",
            Effect::Spend => "paid",
        }
    }
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

/// The hosts of one call that are not fixed: the configured ones and the ones the call learned.
#[derive(Clone, Copy, Debug, Default)]
pub struct KnownHosts<'a> {
    /// The on-demand base host when `THETA_ONDEMAND_API_BASE_URL` names another Theta host.
    pub ondemand: Option<&'a str>,
    /// Host of `THETA_INFERENCE_ENDPOINT`.
    pub inference: Option<&'a str>,
    /// Endpoints of deployments this call created.
    pub own_deployments: &'a [String],
}

/// The API of an already allowlisted `host`, or `None` for a host no route uses.
pub fn api_for_host(host: &str, known: KnownHosts<'_>) -> Option<Api> {
    if host == ONDEMAND_HOST || known.ondemand == Some(host) {
        Some(Api::OnDemand)
    } else if CONTROLLER_HOSTS.contains(&host) {
        Some(Api::Controller)
    } else if host == super::allowlist::VIDEO_API_HOST {
        Some(Api::Video)
    } else if known.inference == Some(host) {
        Some(Api::DedicatedEndpoint)
    } else if known.own_deployments.iter().any(|h| h == host) {
        Some(Api::OwnDeployment)
    } else {
        None
    }
}

/// The records a deployment answer may hold the deployment in: the answer itself, or under `body` /
/// `deployment` / `data` / `result` (and their `deployment(s)`), an array standing for its first item.
pub fn deployment_records(answer: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = vec![answer];
    for key in ["body", "deployment", "data", "result"] {
        if let Some(inner) = answer.get(key) {
            out.push(inner);
            out.extend(
                ["deployment", "deployments"]
                    .iter()
                    .filter_map(|k| inner.get(*k)),
            );
        }
    }
    out.into_iter()
        .map(|v| v.as_array().and_then(|a| a.first()).unwrap_or(v))
        .collect()
}

/// The host of the endpoint in a deployment-create answer (`Endpoint`, `endpoint`, `url`, ...), if
/// it names an HTTPS one.
pub fn deployment_endpoint_host(answer: &serde_json::Value) -> Option<String> {
    deployment_records(answer).into_iter().find_map(|v| {
        [
            "Endpoint",
            "endpoint",
            "EndpointURL",
            "endpoint_url",
            "url",
            "URL",
        ]
        .iter()
        .find_map(|k| v.get(*k).and_then(serde_json::Value::as_str))
        .and_then(|url| url.parse::<http::Uri>().ok())
        .filter(|u| u.scheme_str() == Some("https"))
        .and_then(|u| u.host().map(str::to_ascii_lowercase))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_map_to_their_api() {
        let own = vec!["mine.tec-s1.onthetaedgecloud.com".to_owned()];
        let known = KnownHosts {
            ondemand: None,
            inference: Some("x.tec-s1.onthetaedgecloud.com"),
            own_deployments: &own,
        };
        assert_eq!(api_for_host(ONDEMAND_HOST, known), Some(Api::OnDemand));
        assert_eq!(
            api_for_host("api.thetaedgecloud.com", known),
            Some(Api::Controller)
        );
        assert_eq!(
            api_for_host("api.thetavideoapi.com", known),
            Some(Api::Video)
        );
        assert_eq!(
            api_for_host("x.tec-s1.onthetaedgecloud.com", known),
            Some(Api::DedicatedEndpoint)
        );
        assert_eq!(
            api_for_host("mine.tec-s1.onthetaedgecloud.com", known),
            Some(Api::OwnDeployment)
        );
        // Another customer's deployment, an output bucket: no route goes there.
        assert_eq!(
            api_for_host("evil.tec-s1.onthetaedgecloud.com", known),
            None
        );
        assert_eq!(
            api_for_host("ondemand-outputs.thetaedgecloud.com", known),
            None
        );
    }
}
