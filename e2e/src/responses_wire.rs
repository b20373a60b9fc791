//! The OpenAI Responses API as a mock OpenAI upstream speaks it (`POST …/responses`): pure
//! builders for the response object and its SSE events (`event:` lines, `sequence_number` on every
//! event), used to test the gateway's Responses passthrough.

use serde_json::{Value, json};

use crate::wire::{Reply, SseFrame, TOOL_CALL_ID, Usage, split_deltas};

/// Fixed response id.
pub const RESPONSE_ID: &str = "resp_mock_0001";
/// Fixed `created_at`.
pub const CREATED_AT: u64 = 1_700_000_000;

fn usage_json(usage: Usage) -> Value {
    let input = usage.input + usage.cached;
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": usage.cached},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + usage.output
    })
}

fn item(reply: &Reply) -> Value {
    match reply {
        Reply::Text(text) => {
            json!({"id": "msg_mock_0001", "type": "message", "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]})
        }
        Reply::ToolCall { name, arguments } => {
            json!({"id": "fc_mock_0001", "type": "function_call",
            "status": "completed", "call_id": TOOL_CALL_ID, "name": name, "arguments": arguments.to_string()})
        }
    }
}

fn shell(model: &str, status: &str) -> Value {
    json!({"id": RESPONSE_ID, "object": "response", "created_at": CREATED_AT, "status": status,
        "error": null, "incomplete_details": null, "model": model, "output": [],
        "parallel_tool_calls": true, "tool_choice": "auto", "tools": [], "usage": null})
}

/// Non-streaming Responses object.
pub fn responses_body(model: &str, reply: &Reply, usage: Usage) -> Value {
    let mut r = shell(model, "completed");
    r["output"] = json!([item(reply)]);
    r["usage"] = usage_json(usage);
    r
}

/// Streaming Responses events, ending with `response.completed`.
pub fn responses_stream(model: &str, reply: &Reply, usage: Usage) -> Vec<SseFrame> {
    let mut events: Vec<(&str, Value)> = vec![
        (
            "response.created",
            json!({"response": shell(model, "in_progress")}),
        ),
        (
            "response.in_progress",
            json!({"response": shell(model, "in_progress")}),
        ),
    ];
    let done = item(reply);
    match reply {
        Reply::Text(text) => {
            let mut added = done.clone();
            added["status"] = json!("in_progress");
            added["content"] = json!([]);
            events.push((
                "response.output_item.added",
                json!({"output_index": 0, "item": added}),
            ));
            let part = json!({"type": "output_text", "text": "", "annotations": []});
            events.push(("response.content_part.added",
                json!({"item_id": "msg_mock_0001", "output_index": 0, "content_index": 0, "part": part})));
            for piece in split_deltas(text) {
                events.push((
                    "response.output_text.delta",
                    json!({"item_id": "msg_mock_0001",
                    "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}),
                ));
            }
            events.push((
                "response.output_text.done",
                json!({"item_id": "msg_mock_0001",
                "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
            ));
            events.push((
                "response.content_part.done",
                json!({"item_id": "msg_mock_0001",
                "output_index": 0, "content_index": 0, "part": done["content"][0].clone()}),
            ));
        }
        Reply::ToolCall { arguments, .. } => {
            let mut added = done.clone();
            added["status"] = json!("in_progress");
            added["arguments"] = json!("");
            events.push((
                "response.output_item.added",
                json!({"output_index": 0, "item": added}),
            ));
            events.push(("response.function_call_arguments.delta",
                json!({"item_id": "fc_mock_0001", "output_index": 0, "delta": arguments.to_string()})));
            events.push(("response.function_call_arguments.done",
                json!({"item_id": "fc_mock_0001", "output_index": 0, "arguments": arguments.to_string()})));
        }
    }
    events.push((
        "response.output_item.done",
        json!({"output_index": 0, "item": done}),
    ));
    events.push((
        "response.completed",
        json!({"response": responses_body(model, reply, usage)}),
    ));
    events
        .into_iter()
        .enumerate()
        .map(|(n, (name, mut data))| {
            data["type"] = json!(name);
            data["sequence_number"] = json!(n);
            SseFrame {
                event: Some(name.to_string()),
                data: data.to_string(),
            }
        })
        .collect()
}
