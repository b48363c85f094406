"""Powertools' Redis idempotency layer with the payload-validation hash kept on completion.

Powertools 3.37.0 writes the validation hash with the in-progress record but rewrites the whole
value without it when the record completes (``_update_record``). With
``payload_validation_jmespath`` configured, an *identical* repeat then compares its hash with an
empty one and fails with ``IdempotencyValidationError``. The TypeScript port fixed the same bug
(powertools-lambda-typescript#5705); this subclass does the same for Python until upstream does.
Everything else is the stock layer. Imported only for redis:// stores (it imports redis).
"""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

with warnings.catch_warnings():
    # 3.37.0 warns that the class behind the recommended alias is deprecated: noise here.
    warnings.simplefilter("ignore", DeprecationWarning)
    from aws_lambda_powertools.utilities.idempotency.persistence.cache import (
        CachePersistenceLayer,
    )


# Subclassing a deprecated class warns too (at class creation): same noise, same filter.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)

    class RedisPersistenceLayer(CachePersistenceLayer):
        """``CachePersistenceLayer`` whose completed records keep their validation hash."""

        def __init__(self, **kwargs: Any) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                super().__init__(**kwargs)

        def _update_record(self, data_record: DataRecord) -> None:
            mapping: dict[str, Any] = {
                self.data_attr: data_record.response_data,
                self.status_attr: data_record.status,
                self.expiry_attr: data_record.expiry_timestamp,
            }
            if self.payload_validation_enabled:
                mapping[self.validation_key_attr] = data_record.payload_hash  # the missing line
            ttl = self._get_expiry_second(data_record.expiry_timestamp)
            self.client.set(
                name=data_record.idempotency_key, value=self._json_serializer(mapping), ex=ttl
            )
