//! What a scripted [`Behaviour`] asks of an answer, the same for every flavour: which reply
//! (text or tool call, usage fixed or estimated), how the stream ends, or an error status. The
//! behaviours that are no answer at all (`Reset`, `Silence`) and the wait of `SlowFirstByte`
//! happen here too, so each flavour only renders a [`Plan`] in its own wire format.

use std::time::Duration;

use http::{HeaderValue, Response};
use tokio::sync::Notify;

use super::{MockBody, Shared, StreamEnd};
use crate::behaviour::{Behaviour, DEFAULT_TEXT};
use crate::wire::{Reply, Usage};

/// The answer a behaviour asks for.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Plan {
    /// An error status with `body` (`Null`: the flavour's default error body) and extra headers.
    Status {
        /// HTTP status code.
        status: u16,
        /// JSON body, or `Null`.
        body: serde_json::Value,
        /// Extra response headers.
        headers: Vec<(String, String)>,
    },
    /// A reply; `usage` is `None` when it is to be estimated from the request.
    Answer {
        /// The assistant's reply.
        reply: Reply,
        /// Fixed usage, if any.
        usage: Option<Usage>,
        /// How the stream (or the JSON body) ends.
        end: StreamEnd,
    },
    /// The default text, streamed, cut after `after_events` events by the flavour's in-stream
    /// error `exception` with `message`.
    Exception {
        /// Events sent before the error.
        after_events: usize,
        /// The provider's error type.
        exception: String,
        /// Its message.
        message: String,
    },
}

/// The reply of a behaviour that is a plain answer (`Ok`, `OkWithUsage`, `ToolCall`), or the
/// behaviour back.
pub(super) fn plain_reply(behaviour: Behaviour) -> Result<(Reply, Option<Usage>), Behaviour> {
    match behaviour {
        Behaviour::Ok { text } => Ok((Reply::Text(text), None)),
        Behaviour::OkWithUsage {
            text,
            input,
            output,
            cached,
        } => Ok((
            Reply::Text(text),
            Some(Usage {
                input,
                output,
                cached,
            }),
        )),
        Behaviour::ToolCall { name, arguments } => Ok((Reply::ToolCall { name, arguments }, None)),
        other => Err(other),
    }
}

/// The plan of `behaviour`. `Reset` closes the connection (through `kill`) and `Silence` waits
/// for the mock's shutdown first: neither returns. `SlowFirstByte` waits, then plans the default
/// text.
pub(super) async fn plan(behaviour: Behaviour, shared: &Shared, kill: &Notify) -> Plan {
    let behaviour = match plain_reply(behaviour) {
        Ok((reply, usage)) => {
            return Plan::Answer {
                reply,
                usage,
                end: StreamEnd::Complete,
            };
        }
        Err(other) => other,
    };
    let end = match behaviour {
        Behaviour::Status {
            status,
            body,
            headers,
        } => {
            return Plan::Status {
                status,
                body,
                headers,
            };
        }
        Behaviour::Reset => {
            kill.notify_one();
            return std::future::pending().await;
        }
        Behaviour::Silence => {
            let mut shutdown = shared.shutdown.subscribe();
            let _ = shutdown.wait_for(|stop| *stop).await;
            kill.notify_one();
            return std::future::pending().await;
        }
        Behaviour::SlowFirstByte { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StreamEnd::Complete
        }
        Behaviour::CutStream { after_events } => StreamEnd::Cut(after_events),
        Behaviour::StallStream { after_events } => StreamEnd::Stall(after_events),
        Behaviour::HeldStream { after_events, ping } => StreamEnd::Held(after_events, ping),
        Behaviour::MalformedEvent => StreamEnd::Malformed,
        Behaviour::StreamException {
            after_events,
            exception,
            message,
        } => {
            return Plan::Exception {
                after_events,
                exception,
                message,
            };
        }
        Behaviour::Ok { .. } | Behaviour::OkWithUsage { .. } | Behaviour::ToolCall { .. } => {
            unreachable!("plain replies are planned above")
        }
    };
    Plan::Answer {
        reply: Reply::Text(DEFAULT_TEXT.to_string()),
        usage: None,
        end,
    }
}

/// `response` with the extra `headers` of a `Status` behaviour (invalid ones skipped).
pub(super) fn with_headers(
    mut response: Response<MockBody>,
    headers: Vec<(String, String)>,
) -> Response<MockBody> {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use std::pin::{Pin, pin};
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::wire::Flavor;

    fn shared() -> Shared {
        Shared::new(Flavor::OpenAI)
    }

    /// Polls `f` once: its output if it is ready.
    fn now<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
        match Pin::new(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    /// Whether `kill` was notified (takes the notification).
    fn killed(kill: &Notify) -> bool {
        now(&mut pin!(kill.notified())).is_some()
    }

    async fn plan_of(behaviour: Behaviour) -> Plan {
        plan(behaviour, &shared(), &Notify::new()).await
    }

    fn default_text(end: StreamEnd) -> Plan {
        Plan::Answer {
            reply: Reply::Text(DEFAULT_TEXT.to_string()),
            usage: None,
            end,
        }
    }

    #[tokio::test]
    async fn replies_and_their_usage() {
        assert_eq!(
            plan_of(Behaviour::Ok { text: "hi".into() }).await,
            Plan::Answer {
                reply: Reply::Text("hi".into()),
                usage: None,
                end: StreamEnd::Complete
            }
        );
        assert_eq!(
            plan_of(Behaviour::OkWithUsage {
                text: "hi".into(),
                input: 3,
                output: 4,
                cached: 5
            })
            .await,
            Plan::Answer {
                reply: Reply::Text("hi".into()),
                usage: Some(Usage {
                    input: 3,
                    output: 4,
                    cached: 5
                }),
                end: StreamEnd::Complete
            }
        );
        let call = Behaviour::ToolCall {
            name: "f".into(),
            arguments: serde_json::json!({"a": 1}),
        };
        assert_eq!(
            plain_reply(call.clone()),
            Ok((
                Reply::ToolCall {
                    name: "f".into(),
                    arguments: serde_json::json!({"a": 1})
                },
                None
            ))
        );
        assert_eq!(plain_reply(Behaviour::Reset), Err(Behaviour::Reset));
        assert!(matches!(
            plan_of(call).await,
            Plan::Answer {
                reply: Reply::ToolCall { .. },
                end: StreamEnd::Complete,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn stream_misbehaviours_end_the_default_text() {
        let cases = [
            (Behaviour::SlowFirstByte { ms: 0 }, StreamEnd::Complete),
            (Behaviour::CutStream { after_events: 2 }, StreamEnd::Cut(2)),
            (
                Behaviour::StallStream { after_events: 3 },
                StreamEnd::Stall(3),
            ),
            (
                Behaviour::HeldStream {
                    after_events: 1,
                    ping: true,
                },
                StreamEnd::Held(1, true),
            ),
            (Behaviour::MalformedEvent, StreamEnd::Malformed),
        ];
        for (behaviour, end) in cases {
            assert_eq!(plan_of(behaviour).await, default_text(end));
        }
        assert_eq!(
            plan_of(Behaviour::StreamException {
                after_events: 2,
                exception: "overloaded_error".into(),
                message: "busy".into()
            })
            .await,
            Plan::Exception {
                after_events: 2,
                exception: "overloaded_error".into(),
                message: "busy".into()
            }
        );
        let status = Behaviour::Status {
            status: 429,
            body: serde_json::Value::Null,
            headers: vec![("retry-after".into(), "1".into())],
        };
        assert_eq!(
            plan_of(status).await,
            Plan::Status {
                status: 429,
                body: serde_json::Value::Null,
                headers: vec![("retry-after".into(), "1".into())]
            }
        );
    }

    #[test]
    fn reset_closes_the_connection_and_silence_waits_for_shutdown() {
        let (shared, kill) = (shared(), Notify::new());
        let mut reset = pin!(plan(Behaviour::Reset, &shared, &kill));
        assert!(now(&mut reset).is_none(), "no answer");
        assert!(killed(&kill), "connection closed");

        let mut silence = pin!(plan(Behaviour::Silence, &shared, &kill));
        assert!(now(&mut silence).is_none());
        assert!(!killed(&kill), "still open");
        shared.shutdown.send_replace(true);
        assert!(now(&mut silence).is_none(), "never an answer");
        assert!(killed(&kill), "closed on shutdown");
    }

    #[test]
    fn status_headers_are_added_and_invalid_ones_skipped() {
        let response = with_headers(
            Response::new(super::super::full("{}")),
            vec![
                ("retry-after".into(), "1".into()),
                ("bad name".into(), "x".into()),
            ],
        );
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers().len(), 1);
    }
}
