//! InitProducerId: hands an idempotent producer a producer id never given before (the
//! controller on shard 0 allocates them from persisted blocks) and epoch 0. As in Kafka for
//! producers without a transactional id, a producer asking again (after a fatal sequence error,
//! KIP-360) gets a new id. Transactions come later: a transactional id is refused.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use strand_shards::ShardId;
use tracing::debug;

use crate::cluster::ControllerRequest;
use crate::shard::{ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: InitProducerIdRequest, _version: i16) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if request.transactional_id.as_ref().is_some_and(|id| !id.is_empty()) {
        return response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    let allocated = shard
        .call(ShardId(0), |reply| ShardRequest::Controller(ControllerRequest::AllocateProducerId { reply }))
        .await;
    match allocated {
        Ok(Ok(id)) => {
            debug!(producer_id = id, "producer id allocated");
            response.with_producer_id(ProducerId(id)).with_producer_epoch(0)
        }
        Ok(Err(e)) => response.with_error_code(e.code.code()),
        Err(_) => response.with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}
