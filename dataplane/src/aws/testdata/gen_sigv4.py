"""Writes sigv4.json: requests signed by botocore's SigV4Auth, the reference
the Rust signer is tested against (src/aws/sigv4.rs, signatures_match_botocore).

Run: python3 gen_sigv4.py (needs botocore). botocore signs the headers it is
given plus host and x-amz-date (and x-amz-security-token for temporary
credentials); the cases only give it headers the Rust signer signs too
(content-type, x-amz-*), so both sign the same set."""
import datetime, json
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
T = 1_440_938_160  # 2015-08-30T12:36:00Z

cases = [
    dict(name="get-vanilla", service="service", region="us-east-1", method="GET",
         url="https://example.amazonaws.com/", headers={}, body="", token=None, time=T),
    dict(name="get-query-unsorted", service="service", region="us-east-1", method="GET",
         url="https://example.amazonaws.com/?Param2=value2&Param1=value1", headers={}, body="", token=None, time=T),
    dict(name="bedrock-invoke-profile-id", service="bedrock", region="us-east-1", method="POST",
         url="https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream",
         headers={"content-type": "application/json"},
         body='{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}',
         token=None, time=1_700_000_000),
    dict(name="bedrock-converse-arn-session-token", service="bedrock", region="eu-central-1", method="POST",
         url="https://bedrock-runtime.eu-central-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aeu-central-1%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse",
         headers={"content-type": "application/json"},
         body='{"messages":[{"role":"user","content":[{"text":"h\u00e9"}]}]}',
         token="IQoJb3JpZ2luX2VjEXAMPLETOKEN//////////wEaCXVzLWVhc3QtMSJHMEUCIQ==", time=1_765_000_000),
    dict(name="local-endpoint-with-port", service="bedrock", region="us-west-2", method="POST",
         url="http://127.0.0.1:9999/model/meta.llama3-70b-instruct-v1%3A0/converse-stream",
         headers={"content-type": "application/json", "x-amz-client-context": "a  b   c"},
         body="{}", token=None, time=1_765_000_001),
    dict(name="sts-form-post", service="sts", region="us-east-1", method="POST",
         url="https://sts.us-east-1.amazonaws.com/",
         headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
         body="Action=AssumeRoleWithWebIdentity&Version=2011-06-15", token=None, time=T),
]

out = []
for c in cases:
    creds = Credentials(AKID, SECRET, c["token"])
    req = AWSRequest(method=c["method"], url=c["url"], data=c["body"].encode(), headers=dict(c["headers"]))
    now = datetime.datetime.fromtimestamp(c["time"], datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now):
        SigV4Auth(creds, c["service"], c["region"]).add_auth(req)
    c = dict(c, access_key=AKID, secret_key=SECRET,
             authorization=req.headers["Authorization"], amz_date=req.headers["X-Amz-Date"])
    out.append(c)
open("sigv4.json", "w").write(json.dumps(out, indent=2) + "\n")
