//! The host's route table: every request the plugin is known to make, with the commands that make it,
//! its effect, how it is priced and whether it needs the family's credential. It is the host's own
//! copy of the contract, so grants, prices and dry-run never depend on what the plugin says about
//! itself: a request passes only if it matches a route of the command the call is running, and a
//! command is granted by what its routes can do.

use super::Effect;
use crate::credentials::Family;

/// Which kind of host a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// The on-demand API (`ondemand.thetaedgecloud.com`, or the configured on-demand base host).
    OnDemand,
    /// The controller / platform API (`controller.`, `api.`, `controller-beta.thetaedgecloud.com`).
    Controller,
    /// The Theta Video API.
    Video,
    /// The dedicated endpoint the host is configured with (`THETA_INFERENCE_ENDPOINT`).
    DedicatedEndpoint,
    /// The endpoint of a deployment this call created (learned from the create answer).
    OwnDeployment,
    /// A presigned upload URL on the storage host that this call's upload-URL answer named (see
    /// `presigned`): it carries its own signature, so no credential goes there.
    PresignedUpload,
}

impl Api {
    pub fn family(self) -> Family {
        match self {
            Api::OnDemand => Family::OnDemand,
            Api::Controller => Family::Controller,
            Api::Video => Family::Video,
            Api::DedicatedEndpoint => Family::DedicatedInference,
            Api::OwnDeployment | Api::PresignedUpload => Family::Public,
        }
    }
}

/// How a paid route is priced (see `tenant::pricing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Price {
    Free,
    /// `/infer_request/{service}`: the service's price, scaled by the body's `max_tokens` for LLMs.
    Service,
    /// OpenAI-shaped chat: the body's `model`, scaled by `max_tokens`.
    ChatModel,
    /// Chat on the tenant's own dedicated endpoint.
    DedicatedChat,
    /// A deployment: the VM type's hourly price × replicas × the lease's hours.
    DeploymentHours,
    /// Encoding a video.
    VideoEncode,
}

/// One route. `path` segments are literals, `a|b` alternatives, or `{}` for one identifier.
#[derive(Debug)]
pub struct Route {
    pub methods: &'static [&'static str],
    pub api: Api,
    pub path: &'static str,
    pub commands: &'static [&'static str],
    pub effect: Effect,
    pub price: Price,
    pub credential: bool,
}

impl Route {
    fn matches(&self, method: &str, api: Api, segments: &[&str]) -> bool {
        if self.api != api || !self.methods.contains(&method) {
            return false;
        }
        if self.path == ANY_GRANTED_PATH {
            return true;
        }
        let pattern: Vec<&str> = self
            .path
            .split('/')
            .skip(1)
            .filter(|s| !s.is_empty())
            .collect();
        pattern.len() == segments.len()
            && pattern
                .iter()
                .zip(segments)
                .all(|(p, s)| *p == "{}" || p.split('|').any(|alternative| alternative == *s))
    }

    /// Whether a call of `command` (canonical name) may use this route.
    pub fn used_by(&self, command: &str) -> bool {
        self.commands.contains(&command)
    }
}

/// The path of a route whose URLs are granted one by one (checked whole, not by shape).
pub const ANY_GRANTED_PATH: &str = "*";

const GET: &[&str] = &["GET", "HEAD"];
const POST: &[&str] = &["POST"];
const PUT_OR_POST: &[&str] = &["PUT", "POST"];
const DELETE: &[&str] = &["DELETE"];

const ONDEMAND_RUN: &[&str] = &["infer", "theta.ondemand.chat"];
/// Commands that ask for presigned upload URLs (`theta.ondemand.upload` then PUTs to one).
const UPLOAD_URL_READERS: &[&str] = &["get_upload_url", super::presigned::UPLOAD_COMMAND];
const ONDEMAND_POLL: &[&str] = &["get_request_status", "infer", "theta.ondemand.chat"];
/// Commands that find the project's deployments (route probe, verify after delete, get).
const DEPLOYMENT_READERS: &[&str] = &[
    "theta.deployments.list",
    "theta.deployments.get",
    "theta.deployments.routeProbe",
    "theta.deployments.delete",
    "theta.deployments.create",
    "theta.deployments.start",
    "theta.deployments.stop",
    "theta.deployments.validateDisposable",
];
const DEPLOYMENT_CREATORS: &[&str] = &[
    "theta.deployments.create",
    "theta.deployments.validateDisposable",
];
const DEPLOYMENT_DELETERS: &[&str] = &[
    "theta.deployments.delete",
    "theta.deployments.create",
    "theta.deployments.validateDisposable",
];
const VM_READERS: &[&str] = &[
    "theta.deployments.listVm",
    "theta.deployments.create",
    "theta.deployments.validateDisposable",
];
const BALANCE_READERS: &[&str] = &[
    "theta.billing.balance",
    "theta.billing.balanceSnapshot",
    "theta.deployments.validateDisposable",
];
/// `theta.inference.chat` reads the served model when none is given.
const READY_PROBES: &[&str] = &[
    "theta.inference.ready",
    "theta.inference.models",
    "theta.inference.chat",
];

/// Every route, most specific first (literal segments before `{}` at the same place).
pub const ROUTES: &[Route] = &[
    // ---- on-demand ----
    Route {
        methods: GET,
        api: Api::OnDemand,
        path: "/service/list",
        commands: &["list_services", "theta.route"],
        effect: Effect::Read,
        price: Price::Free,
        credential: false,
    },
    Route {
        methods: POST,
        api: Api::OnDemand,
        path: "/infer_request/chat/completions",
        commands: ONDEMAND_RUN,
        effect: Effect::Spend,
        price: Price::ChatModel,
        credential: true,
    },
    Route {
        methods: POST,
        api: Api::OnDemand,
        path: "/infer_request/{}/input_presigned_urls",
        commands: UPLOAD_URL_READERS,
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: POST,
        api: Api::OnDemand,
        path: "/infer_request/{}/{}/input_presigned_urls",
        commands: UPLOAD_URL_READERS,
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: POST,
        api: Api::OnDemand,
        path: "/infer_request/{}",
        commands: ONDEMAND_RUN,
        effect: Effect::Spend,
        price: Price::Service,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::OnDemand,
        path: "/infer_request/{}",
        commands: ONDEMAND_POLL,
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    // ---- the storage host, for URLs this call was granted only ----
    Route {
        methods: &["PUT"],
        api: Api::PresignedUpload,
        path: ANY_GRANTED_PATH,
        commands: &[super::presigned::UPLOAD_COMMAND],
        effect: Effect::Mutate,
        price: Price::Free,
        credential: false,
    },
    // ---- controller: deployments ----
    Route {
        methods: GET,
        api: Api::Controller,
        path: "/deployment|deployments/list",
        commands: DEPLOYMENT_READERS,
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: POST,
        api: Api::Controller,
        path: "/deployment|deployments",
        commands: DEPLOYMENT_CREATORS,
        effect: Effect::Spend,
        price: Price::DeploymentHours,
        credential: true,
    },
    Route {
        methods: DELETE,
        api: Api::Controller,
        path: "/deployment|deployments/{}/{}",
        commands: DEPLOYMENT_DELETERS,
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: PUT_OR_POST,
        api: Api::Controller,
        path: "/deployment|deployments/{}/{}/start",
        commands: &["theta.deployments.start"],
        effect: Effect::Spend,
        price: Price::DeploymentHours,
        credential: true,
    },
    Route {
        methods: PUT_OR_POST,
        api: Api::Controller,
        path: "/deployment|deployments/{}/{}/stop",
        commands: &["theta.deployments.stop"],
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::Controller,
        path: "/resource/vm/list",
        commands: VM_READERS,
        effect: Effect::Read,
        price: Price::Free,
        credential: false,
    },
    Route {
        methods: GET,
        api: Api::Controller,
        path: "/deployment_template/list_standard_templates|list_custom_templates",
        commands: &["theta.deployments.listTemplates"],
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::Controller,
        path: "/balance",
        commands: BALANCE_READERS,
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    // ---- controller: AI agents ----
    Route {
        methods: POST,
        api: Api::Controller,
        path: "/chatbot",
        commands: &["theta.ai.agent.create"],
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::Controller,
        path: "/chatbot/list",
        commands: &["theta.ai.agent.list"],
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::Controller,
        path: "/chatbot/{}",
        commands: &["theta.ai.agent.get"],
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: PUT_OR_POST,
        api: Api::Controller,
        path: "/chatbot/{}",
        commands: &["theta.ai.agent.update"],
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: POST,
        api: Api::Controller,
        path: "/chatbot/{}/document",
        commands: &["theta.ai.agent.document.create"],
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::Controller,
        path: "/chatbot/{}/document/list",
        commands: &["theta.ai.agent.document.list"],
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::Controller,
        path: "/chatbot/{}/document/{}",
        commands: &["theta.ai.agent.document.get"],
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: PUT_OR_POST,
        api: Api::Controller,
        path: "/chatbot/{}/document/{}",
        commands: &["theta.ai.agent.document.update"],
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    // ---- video ----
    Route {
        methods: GET,
        api: Api::Video,
        path: "/video/{}/list",
        commands: &["theta.video.list"],
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: POST,
        api: Api::Video,
        path: "/upload",
        commands: &["theta.video.uploadCreate"],
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: POST,
        api: Api::Video,
        path: "/video",
        commands: &["theta.video.videoCreate"],
        effect: Effect::Spend,
        price: Price::VideoEncode,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::Video,
        path: "/video/{}",
        commands: &["theta.video.videoGet"],
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: POST,
        api: Api::Video,
        path: "/stream",
        commands: &["theta.video.streamCreate"],
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::Video,
        path: "/stream/{}",
        commands: &["theta.video.streamGet"],
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::Video,
        path: "/service_account/{}/streams",
        commands: &["theta.video.streamList"],
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: GET,
        api: Api::Video,
        path: "/ingestor/filter",
        commands: &["theta.video.ingestor.list"],
        effect: Effect::Read,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: PUT_OR_POST,
        api: Api::Video,
        path: "/ingestor/{}/select",
        commands: &["theta.video.ingestor.select"],
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    Route {
        methods: PUT_OR_POST,
        api: Api::Video,
        path: "/ingestor/{}/unselect",
        commands: &["theta.video.ingestor.unselect"],
        effect: Effect::Mutate,
        price: Price::Free,
        credential: true,
    },
    // ---- the dedicated endpoint ----
    Route {
        methods: GET,
        api: Api::DedicatedEndpoint,
        path: "/v1/models",
        commands: READY_PROBES,
        effect: Effect::Read,
        price: Price::Free,
        credential: false,
    },
    Route {
        methods: GET,
        api: Api::DedicatedEndpoint,
        path: "/config",
        commands: &["theta.inference.ready"],
        effect: Effect::Read,
        price: Price::Free,
        credential: false,
    },
    Route {
        methods: POST,
        api: Api::DedicatedEndpoint,
        path: "/v1/chat/completions",
        commands: &["theta.inference.chat"],
        effect: Effect::Spend,
        price: Price::DedicatedChat,
        credential: false,
    },
    // ---- the endpoint of a deployment this call created ----
    Route {
        methods: GET,
        api: Api::OwnDeployment,
        path: "/v1/models|config",
        commands: &["theta.deployments.validateDisposable"],
        effect: Effect::Read,
        price: Price::Free,
        credential: false,
    },
    Route {
        methods: POST,
        api: Api::OwnDeployment,
        path: "/v1/chat/completions",
        commands: &["theta.deployments.validateDisposable"],
        effect: Effect::Read,
        price: Price::Free,
        credential: false,
    },
];

/// Whether a route's answer names presigned upload URLs (which the host then grants to the call).
pub fn grants_uploads(route: &Route) -> bool {
    route.api == Api::OnDemand && route.path.ends_with("/input_presigned_urls")
}

/// The route a request matches, if any. `segments` come from [`super::canonical::segments`].
pub fn find(method: &str, api: Api, segments: &[&str]) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.matches(method, api, segments))
}

/// Every command the host knows, with the aliases that run it.
pub const ALIASES: &[(&str, &str)] = &[
    ("theta.ondemand.listServices", "list_services"),
    ("theta.ondemand.infer", "infer"),
    ("theta.ondemand.status", "get_request_status"),
    ("theta.ondemand.inputPresignedUrls", "get_upload_url"),
    (
        "theta.deployments.listStandard",
        "theta.deployments.listTemplates",
    ),
    ("theta.video.ingestorList", "theta.video.ingestor.list"),
];

/// Commands that make no request at all (they answer from the host's configuration).
const OFFLINE_COMMANDS: &[&str] = &["theta.auth.capabilities"];

/// Every command name the table mentions (with repeats).
fn mentioned_commands() -> impl Iterator<Item = &'static str> {
    OFFLINE_COMMANDS
        .iter()
        .copied()
        .chain(ROUTES.iter().flat_map(|r| r.commands.iter().copied()))
}

/// The canonical name of a command or alias the host knows.
pub fn canonical_command(name: &str) -> Option<&'static str> {
    if let Some((_, canonical)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Some(canonical);
    }
    mentioned_commands().find(|c| *c == name)
}

/// The strongest effect any route of `command` (canonical) has: what granting it allows.
pub fn command_effect(command: &str) -> Effect {
    ROUTES
        .iter()
        .filter(|r| r.used_by(command))
        .map(|r| r.effect)
        .max()
        .unwrap_or(Effect::Read)
}

/// Every canonical command the host knows, sorted.
pub fn commands() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = mentioned_commands().collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<&str> {
        super::super::canonical::segments(p).unwrap()
    }

    #[test]
    fn routes_match_the_plugins_requests() {
        let r = find("POST", Api::OnDemand, &segs("/infer_request/qwen3")).unwrap();
        assert_eq!((r.effect, r.price), (Effect::Spend, Price::Service));
        let r = find(
            "POST",
            Api::OnDemand,
            &segs("/infer_request/chat/completions"),
        )
        .unwrap();
        assert_eq!(r.price, Price::ChatModel);
        let r = find(
            "POST",
            Api::OnDemand,
            &segs("/infer_request/flux/input_presigned_urls"),
        )
        .unwrap();
        assert_eq!(r.effect, Effect::Mutate);
        assert!(
            find("GET", Api::OnDemand, &segs("/infer_request/x"))
                .unwrap()
                .used_by("get_request_status")
        );
        assert!(find("POST", Api::Controller, &segs("/deployments")).is_some());
        assert!(
            find("GET", Api::Controller, &segs("/chatbot/list"))
                .unwrap()
                .used_by("theta.ai.agent.list")
        );
        assert!(
            !find("GET", Api::Controller, &segs("/chatbot/list"))
                .unwrap()
                .used_by("theta.ai.agent.get")
        );
    }

    #[test]
    fn unknown_shapes_match_nothing() {
        assert!(find("POST", Api::OnDemand, &segs("/Infer_request/x")).is_none());
        assert!(find("POST", Api::OnDemand, &segs("/infer_request/x/y/z/w")).is_none());
        assert!(find("PATCH", Api::OnDemand, &segs("/infer_request/x")).is_none());
        assert!(find("POST", Api::Controller, &segs("/deployment/1/x/restart")).is_none());
        assert!(find("POST", Api::Video, &segs("/video/x/transcode")).is_none());
        assert!(find("GET", Api::OnDemand, &segs("/balance")).is_none());
    }

    #[test]
    fn commands_are_granted_by_their_strongest_route() {
        assert_eq!(command_effect("infer"), Effect::Spend);
        assert_eq!(command_effect("get_request_status"), Effect::Read);
        assert_eq!(command_effect("theta.deployments.delete"), Effect::Mutate);
        assert_eq!(
            command_effect("theta.deployments.validateDisposable"),
            Effect::Spend
        );
        // Starting bills again; stopping only ends billing.
        assert_eq!(command_effect("theta.deployments.start"), Effect::Spend);
        assert_eq!(command_effect("theta.deployments.stop"), Effect::Mutate);
        let start = find("POST", Api::Controller, &segs("/deployments/1/abc/start")).unwrap();
        assert!(
            start.used_by("theta.deployments.start") && !start.used_by("theta.deployments.stop")
        );
        assert_eq!(start.price, Price::DeploymentHours);
        assert_eq!(canonical_command("theta.ondemand.infer"), Some("infer"));
        assert_eq!(
            canonical_command("theta.auth.capabilities"),
            Some("theta.auth.capabilities")
        );
        assert_eq!(canonical_command("fetch"), None);
    }
}
