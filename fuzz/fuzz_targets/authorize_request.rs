//! The authorization request parser (OIDC Core §3.1.2.1, RFC 6749 §4.1.1) of a provider on
//! in-memory SQLite with one registered web application: whatever follows that application's
//! client_id and redirect_uri in the query, an answer (a page or a redirect), never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_core::admin::ClientSpec;
use tessera_core::model::ClientType;
use tessera_core::params::Params;
use tessera_core::secret::MasterKey;
use tessera_core::settings::{KeySettings, Lifetimes, Settings};
use tessera_core::{Clock, Provider};

const RP: &str = "https://rp.example.com/cb";

struct State {
    rt: tokio::runtime::Runtime,
    provider: Provider,
    prefix: String,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (provider, client_id) = rt.block_on(async {
            let store = tessera_store::connect("sqlite::memory:").await.expect("store");
            let settings = Settings::new(
                "http://localhost:8080",
                Lifetimes::default(),
                KeySettings::default(),
            )
            .expect("settings");
            let master = MasterKey::parse(&MasterKey::generate_text()).expect("master key");
            let provider = Provider::new(settings, store, master, Clock::System)
                .await
                .expect("provider");
            let spec = ClientSpec {
                redirect_uris: vec![RP.into()],
                ..ClientSpec::new("Fuzzed", ClientType::Web)
            };
            let created = provider.create_client(&spec).await.expect("client");
            (provider, created.client.client_id)
        });
        let prefix = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("client_id", client_id.as_str()), ("redirect_uri", RP)])
            .finish();
        State {
            rt,
            provider,
            prefix: format!("{prefix}&"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = state();
    let mut query = s.prefix.as_bytes().to_vec();
    query.extend_from_slice(data);
    if let Ok(p) = Params::parse(&query) {
        let _ = s.rt.block_on(s.provider.authorize_request(&p));
    }
});
