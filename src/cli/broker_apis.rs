//! Which Kafka APIs the broker serves, from its ApiVersions answer, so a command whose APIs
//! are missing fails at once with Kafka's UNSUPPORTED_VERSION instead of librdkafka waiting
//! for a coordinator until the timeout.

use kafka_protocol::messages::ApiKey;

use super::brokers::BrokerArgs;
use super::kafka_error::hint;
use super::raw_client::RawConnection;

/// The (api key, min, max) versions a broker advertised.
#[derive(Debug, Clone)]
pub struct BrokerApis {
    versions: Vec<(i16, i16, i16)>,
}

impl BrokerApis {
    /// Asks the first bootstrap broker (after the reachability probe).
    pub fn fetch(b: &BrokerArgs) -> anyhow::Result<Self> {
        b.probe()?;
        let broker = b.list().next().unwrap_or("127.0.0.1:9092");
        let versions = RawConnection::connect(broker, b.timeout)?.api_versions()?;
        Ok(Self { versions })
    }

    pub fn has(&self, api: ApiKey) -> bool {
        self.versions.iter().any(|(key, _, _)| *key == api as i16)
    }

    /// Fails with UNSUPPORTED_VERSION naming every API in `apis` the broker lacks.
    pub fn require(&self, context: &str, apis: &[ApiKey]) -> anyhow::Result<()> {
        let missing: Vec<String> = apis.iter().filter(|a| !self.has(**a)).map(|a| format!("{a:?}")).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let hint = hint("UNSUPPORTED_VERSION").unwrap_or_default();
        anyhow::bail!("{context}: UNSUPPORTED_VERSION (the broker does not serve {}); hint: {hint}", missing.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_apis_are_named_in_one_line() {
        let apis = BrokerApis { versions: vec![(ApiKey::Metadata as i16, 0, 12), (ApiKey::OffsetFetch as i16, 0, 9)] };
        assert!(apis.require("x", &[ApiKey::Metadata]).is_ok());
        let err = apis.require("group delete g", &[ApiKey::FindCoordinator, ApiKey::OffsetFetch, ApiKey::DeleteGroups]).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("group delete g: UNSUPPORTED_VERSION (the broker does not serve FindCoordinator, DeleteGroups)"), "{text}");
        assert!(!text.contains('\n'));
    }
}
