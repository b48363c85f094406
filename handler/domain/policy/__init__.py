"""The recording policy: an ordered list of rules, first match wins, then a default.

Documents are YAML or JSON (format `version: 1`). `document` holds the models users write,
`conditions` what a rule's `when` matches, `times` the time-of-day / day / date conditions,
`matchers` the compiled checks and the sampling hash, `engine` the `Policy` that decides, `quota`
the ports for concurrency caps, `loader` parsing with precise errors, `explain` the dry run.
Import from here: the layout may change.
"""

from handler.domain.policy.conditions import AttributeCondition, When
from handler.domain.policy.document import (
    DEFAULT_RULE,
    SAMPLE_BUCKETS,
    Action,
    PolicyDocument,
    Rule,
)
from handler.domain.policy.engine import Policy
from handler.domain.policy.explain import Explanation, explain
from handler.domain.policy.loader import PolicyError, load_policy, parse_policy, parse_policy_text
from handler.domain.policy.matchers import sample_bucket
from handler.domain.policy.quota import (
    ActiveRecordings,
    ActiveRecordingsLedger,
    InMemoryActiveRecordings,
)

__all__ = [
    "DEFAULT_RULE",
    "SAMPLE_BUCKETS",
    "Action",
    "ActiveRecordings",
    "ActiveRecordingsLedger",
    "AttributeCondition",
    "Explanation",
    "InMemoryActiveRecordings",
    "Policy",
    "PolicyDocument",
    "PolicyError",
    "Rule",
    "When",
    "explain",
    "load_policy",
    "parse_policy",
    "parse_policy_text",
    "sample_bucket",
]
