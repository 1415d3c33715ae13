"""The test chat-completions server itself answers like the protocol says."""

import httpx
from openai_server import ChatServer, chat_response


def test_server_replies_and_records():
    def handler(req):
        if req["messages"][-1]["content"] == "fail":
            return 503, {"error": {"message": "busy"}}
        return chat_response("ANSWER: 3", top_logprobs=[{"3": -0.1, "4": -2.5}])

    with ChatServer(handler) as server:
        ok = httpx.post(
            f"{server.base_url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        )
        bad = httpx.post(
            f"{server.base_url}/chat/completions", json={"messages": [{"role": "user", "content": "fail"}]}
        )
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "ANSWER: 3"
    assert ok.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1] == {"token": "4", "logprob": -2.5}
    assert bad.status_code == 503 and len(server.requests) == 2
