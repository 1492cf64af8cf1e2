"""Every signature test vector of the protocol document, copied here (tests never read shared docs)."""

from __future__ import annotations

import hashlib

import pytest

from channels.signing import (
    Tc3Request,
    aliyun_percent_encode,
    aliyun_signature,
    aliyun_string_to_sign,
    basic_auth_header,
    tc3_authorization,
    tc3_signature,
    tc3_string_to_sign,
    wechat_callback_signature,
)

# ---- Aliyun signature V1 -------------------------------------------------------------------------

VECTOR_A = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
VECTOR_A_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001"
    "%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4"
    "%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1"
    "%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3D"
    "SMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp%3D"
    "2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)
VECTOR_A_URL_QUERY = (
    "Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123"
    "&PhoneNumbers=15300000001&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1"
    "%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-"
    "2956eda1b466&SignatureVersion=1.0&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D"
    "&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
)
VECTOR_B = {
    "Format": "XML",
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Version": "2014-05-26",
}


def test_aliyun_vector_a_string_to_sign() -> None:
    assert aliyun_string_to_sign("GET", VECTOR_A) == VECTOR_A_STRING_TO_SIGN


def test_aliyun_vector_a_signature_get() -> None:
    assert aliyun_signature("testSecret", "GET", VECTOR_A) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_vector_a_url_encoding_and_final_query() -> None:
    signature = aliyun_signature("testSecret", "GET", VECTOR_A)
    assert aliyun_percent_encode(signature) == "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D"
    query = "&".join(
        f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}" for k, v in {"Signature": signature, **VECTOR_A}.items()
    )
    assert query == VECTOR_A_URL_QUERY


def test_aliyun_vector_a_signature_post() -> None:
    assert aliyun_signature("testSecret", "POST", VECTOR_A) == "Xvhv7fPXrPkLVSnlt0jIr08o8NQ="


def test_aliyun_vector_a_lowercase_secret_gives_the_other_value() -> None:
    assert aliyun_signature("testsecret", "GET", VECTOR_A) == "EpROzuoKhdewdxdmVWhll2qdKbk="


def test_aliyun_vector_a_ignores_a_signature_param() -> None:
    assert aliyun_signature("testSecret", "GET", {**VECTOR_A, "Signature": "x"}) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


@pytest.mark.parametrize(
    ("timestamp_key", "expected"),
    [("Timestamp", "OLeaidS1JvxuMvnyHOwuJ+uX5qY="), ("TimeStamp", "CT9X0VtwR86fNWSnsc6v8YGOjuE=")],
)
def test_aliyun_vector_b(timestamp_key: str, expected: str) -> None:
    params = {**VECTOR_B, timestamp_key: "2016-02-23T12:46:24Z"}
    assert aliyun_signature("testsecret", "GET", params) == expected


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [(" ", "%20"), ("*", "%2A"), ("~", "~"), ("!'()", "%21%27%28%29"), ("a-_.z", "a-_.z"), ("阿", "%E9%98%BF")],
)
def test_aliyun_percent_encoding(raw: str, encoded: str) -> None:
    assert aliyun_percent_encode(raw) == encoded


# ---- Tencent TC3-HMAC-SHA256 ---------------------------------------------------------------------

TC3_SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******"
TC3_SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3*******"
TC3_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
TC3_HEADERS = {
    "content-type": "application/json; charset=utf-8",
    "host": "cvm.tencentcloudapi.com",
    "x-tc-action": "describeinstances",
}
TC3_T1_CANONICAL = (
    "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
    "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
)


def test_tc3_payload_hash() -> None:
    assert hashlib.sha256(TC3_PAYLOAD).hexdigest() == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"


def test_tc3_t1_canonical_request_and_string_to_sign() -> None:
    canonical = Tc3Request(headers=TC3_HEADERS, signed_headers=["content-type", "host"], payload=TC3_PAYLOAD).canonical()
    assert canonical == TC3_T1_CANONICAL
    assert tc3_string_to_sign(service="cvm", timestamp=1551113065, canonical_request=canonical) == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )


@pytest.mark.parametrize(
    ("signed", "expected"),
    [
        (["content-type", "host"], "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"),
        (["content-type", "host", "x-tc-action"], "be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3"),
    ],
    ids=["T1", "T2"],
)
def test_tc3_signature_vectors(signed: list[str], expected: str) -> None:
    got = tc3_signature(
        secret_key=TC3_SECRET_KEY, service="cvm", timestamp=1551113065,
        request=Tc3Request(TC3_HEADERS, signed, TC3_PAYLOAD),
    )  # fmt: skip
    assert got == expected


def test_tc3_t1_authorization_header() -> None:
    auth = tc3_authorization(
        secret_id=TC3_SECRET_ID, secret_key=TC3_SECRET_KEY, service="cvm", timestamp=1551113065,
        request=Tc3Request(TC3_HEADERS, ["content-type", "host"], TC3_PAYLOAD),
    )  # fmt: skip
    assert auth == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )


# ---- JPush Basic auth and WeChat callback signature ----------------------------------------------


def test_jpush_basic_auth_vector() -> None:
    assert basic_auth_header("7d431e42dfa6a6d693ac2d04", "5e987ac6d2e04d95a9d8f0d1") == (
        "Basic N2Q0MzFlNDJkZmE2YTZkNjkzYWMyZDA0OjVlOTg3YWM2ZDJlMDRkOTVhOWQ4ZjBkMQ=="
    )


def test_wechat_callback_signature_sorts_before_hashing() -> None:
    # sorted("tok", "1395658920", "nonce42") = ["1395658920", "nonce42", "tok"]
    expected = hashlib.sha1(b"1395658920nonce42tok").hexdigest()
    assert wechat_callback_signature("tok", "1395658920", "nonce42") == expected
    assert wechat_callback_signature("tok", "nonce42", "1395658920") == expected


def test_aliyun_signed_query_matches_the_vector_and_the_slow_path() -> None:
    from channels.signing import aliyun_signed_query

    query = aliyun_signed_query("testSecret", "GET", VECTOR_A)
    assert query.startswith("Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId&")
    assert query == VECTOR_A_URL_QUERY  # the doc's final URL lists the parameters sorted after Signature
