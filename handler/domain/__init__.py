"""Pure domain: events, inbound formats, signatures, policy, decisions, outcomes, the ledger
and GME ports. Imports nothing of this package outside `handler.domain`, and nothing from AWS
or Tencent (no boto3, botocore, tencentcloud, aws_lambda_powertools).
"""
