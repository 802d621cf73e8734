//! Call records: written as a call arrives, completed when it is answered and when it ends, listed newest
//! first with a cursor.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{CALL_COLUMNS, Store, StoreError, int_column, json_column, now_rfc3339};

/// A call record: written when the call arrives, completed when it is answered and when it ends.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CallRecord {
    /// vocals' own id (`vc_…`).
    pub id: String,
    /// Twilio's CallSid (`X-Twilio-CallSid`), or the one vocals made up for a call not from Twilio.
    pub call_sid: Option<String>,
    pub sip_call_id: String,
    pub from: String,
    pub to: String,
    /// The agent's name (`None`: the call was not routed).
    pub agent: Option<String>,
    /// The vocals node that took the call.
    pub node: String,
    pub invite_at: String,
    pub answer_at: Option<String>,
    pub end_at: Option<String>,
    pub end_reason: Option<String>,
    /// The final status of the INVITE (200 when answered).
    pub sip_status: Option<u16>,
    pub codec: Option<String>,
    /// Which of the number's routes took the call: `default` (its `agent_id`) or `rules[i]`, the first of its
    /// routing rules that matched; `None` when the call was refused before a number was found.
    pub route: Option<std::borrow::Cow<'static, str>>,
    /// RTP and agent latency figures, written when the media ends.
    pub stats: Value,
    /// The session timer (RFC 4028), written when the call ends: `interval`, `refresher` (`vocals` or `peer`),
    /// `refreshes`, `glare`; `null` when none ran.
    pub session: Value,
    /// The recording, if the call was recorded: `status`, `duration` (s), `bytes`, `channels`, `format`, `url`
    /// (the API path that serves it), `file` (under `STATE_DIR/recordings`); `null` when not recorded.
    pub recording: Value,
    /// The SIP trace and the quality timeline, when a batch writes them with the record (served on their own:
    /// `GET /v1/calls/{id}/sip` and `/timeline`, never with the record).
    /// JSON text (empty: none).
    #[serde(skip)]
    pub sip: String,
    #[serde(skip)]
    pub timeline: Value,
}

/// What [`Store::call_insight`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insight {
    Sip,
    Timeline,
}

/// Which calls to list: newest first, `limit` at a time, after `cursor` (the last call of the page before).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallQuery {
    /// `Some(true)`: only calls not ended; `Some(false)`: only ended ones.
    pub active: Option<bool>,
    pub agent: Option<String>,
    /// The dialed number.
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: u32,
}

/// The call-record writes, on any executor: the pool, or one transaction holding a batch of them.
pub(crate) mod on {
    use super::*;

    pub async fn insert_call<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        c: &CallRecord,
    ) -> Result<(), StoreError> {
        insert_calls(e, &[c], true).await
    }

    /// The columns a call record is inserted with, in the order of [`insert_calls`]' binds.
    const INSERT_COLUMNS: usize = 19;

    /// Most records in one INSERT: 128 x 19 parameters stays far below SQLite's 32,766 and PostgreSQL's
    /// 65,535.
    pub const INSERT_ROWS: usize = 128;

    /// Inserts records in one statement (at most [`INSERT_ROWS`]). On SQLite every statement is a round trip
    /// to the database's worker thread, and at thousands of calls a second one statement per record is what
    /// the writer would spend its time on. Statements of many rows are not kept prepared: each row count
    /// would be a statement of its own in the cache. `numbered`: `$1, $2 …` placeholders, which PostgreSQL
    /// needs; SQLite gets anonymous `?`s, because it looks each named one up in a list (quadratic in a
    /// statement of 1,792 parameters).
    pub async fn insert_calls<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        records: &[&CallRecord],
        numbered: bool,
    ) -> Result<(), StoreError> {
        debug_assert!(!records.is_empty() && records.len() <= INSERT_ROWS);
        let mut sql = String::with_capacity(200 + records.len() * 80);
        sql.push_str(
            "INSERT INTO calls (id, call_sid, sip_call_id, from_number, to_number, agent, node, invite_at, \
             answer_at, end_at, end_reason, sip_status, codec, stats, session, recording, sip, timeline, route) VALUES ",
        );
        for row in 0..records.len() {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..INSERT_COLUMNS {
                let sep = if column == 0 { "" } else { ", " };
                sql.push_str(sep);
                if numbered {
                    sql.push_str(&format!("${}", row * INSERT_COLUMNS + column + 1));
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
        }
        // Only placeholders are built into the text; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(records.len() == 1);
        for c in records {
            query = query
                .bind(&c.id)
                .bind(c.call_sid.clone())
                .bind(&c.sip_call_id)
                .bind(&c.from)
                .bind(&c.to)
                .bind(c.agent.clone())
                .bind(&c.node)
                .bind(&c.invite_at)
                .bind(c.answer_at.clone())
                .bind(c.end_at.clone())
                .bind(c.end_reason.clone())
                .bind(c.sip_status.map(i64::from))
                .bind(c.codec.clone())
                .bind(if c.stats.is_null() { "{}".to_string() } else { c.stats.to_string() })
                .bind(if c.session.is_null() { "{}".to_string() } else { c.session.to_string() })
                .bind(if c.recording.is_null() { "{}".to_string() } else { c.recording.to_string() })
                .bind(if c.sip.is_empty() { "{}" } else { c.sip.as_str() })
                .bind(if c.timeline.is_null() { "{}".to_string() } else { c.timeline.to_string() })
                .bind(c.route.as_deref().map(str::to_string));
        }
        query.execute(e).await?;
        Ok(())
    }

    /// The SIP Call-ID of a call vocals placed, known once its INVITE is made.
    pub async fn call_dialed<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: &str,
        sip_call_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE calls SET sip_call_id = $1 WHERE id = $2").bind(sip_call_id).bind(id).execute(e).await?;
        Ok(())
    }

    pub async fn call_answered<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: &str,
        at: &str,
        codec: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE calls SET answer_at = $1, sip_status = 200, codec = $2 WHERE id = $3")
            .bind(at)
            .bind(codec)
            .bind(id)
            .execute(e)
            .await?;
        Ok(())
    }

    /// The call ended: when, why, and the INVITE's final status (kept when already set).
    pub async fn call_ended<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: &str,
        at: &str,
        reason: &str,
        sip_status: u16,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE calls SET end_at = $1, end_reason = $2, sip_status = COALESCE(sip_status, $3) WHERE id = $4",
        )
        .bind(at)
        .bind(reason)
        .bind(i64::from(sip_status))
        .bind(id)
        .execute(e)
        .await?;
        Ok(())
    }

    pub async fn call_session<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: &str,
        session: &Value,
    ) -> Result<(), StoreError> {
        json_field(e, JsonField::Session, id, session).await
    }

    pub async fn call_recording<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: &str,
        recording: &Value,
    ) -> Result<(), StoreError> {
        json_field(e, JsonField::Recording, id, recording).await
    }

    pub async fn call_stats<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: &str,
        stats: &Value,
    ) -> Result<(), StoreError> {
        json_field(e, JsonField::Stats, id, stats).await
    }

    pub async fn call_timeline<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: &str,
        timeline: &Value,
    ) -> Result<(), StoreError> {
        json_field(e, JsonField::Timeline, id, timeline).await
    }

    /// A call's SIP trace, matched to its record by the SIP Call-ID (the latest call with it). A refused
    /// INVITE that has no record (the SIP layer refused it before any call began) gets one, so the refusal
    /// and its reason can be found.
    pub async fn call_sip(
        conn: &mut sqlx::AnyConnection,
        sip_call_id: &str,
        trace: &str,
        refused: Option<&CallRecord>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE calls SET sip = $1 WHERE id = \
                   (SELECT id FROM calls WHERE sip_call_id = $2 ORDER BY invite_at DESC LIMIT 1)";
        let done = sqlx::query(sql).bind(trace).bind(sip_call_id).execute(&mut *conn).await?;
        if done.rows_affected() == 0
            && let Some(record) = refused
        {
            let record = CallRecord { sip: trace.to_string(), ..record.clone() };
            insert_call(&mut *conn, &record).await?;
        }
        Ok(())
    }

    /// The JSON columns of a call record written whole.
    enum JsonField {
        Stats,
        Session,
        Recording,
        Timeline,
    }

    /// Sets one JSON column of a call's record (the column named by the enum, never by input).
    async fn json_field<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        field: JsonField,
        id: &str,
        value: &Value,
    ) -> Result<(), StoreError> {
        let sql = match field {
            JsonField::Stats => "UPDATE calls SET stats = $1 WHERE id = $2",
            JsonField::Session => "UPDATE calls SET session = $1 WHERE id = $2",
            JsonField::Recording => "UPDATE calls SET recording = $1 WHERE id = $2",
            JsonField::Timeline => "UPDATE calls SET timeline = $1 WHERE id = $2",
        };
        sqlx::query(sql).bind(value.to_string()).bind(id).execute(e).await?;
        Ok(())
    }
}

impl Store {
    /// Records a call as it arrives (or as it is refused, with its end already filled in).
    pub async fn insert_call(&self, c: &CallRecord) -> Result<(), StoreError> {
        on::insert_call(&self.pool, c).await
    }

    pub async fn call_answered(&self, id: &str, at: &str, codec: &str) -> Result<(), StoreError> {
        on::call_answered(&self.pool, id, at, codec).await
    }

    /// The call ended: when, why, and the INVITE's final status (kept when already set).
    pub async fn call_ended(&self, id: &str, at: &str, reason: &str, sip_status: u16) -> Result<(), StoreError> {
        on::call_ended(&self.pool, id, at, reason, sip_status).await
    }

    pub async fn call_stats(&self, id: &str, stats: &Value) -> Result<(), StoreError> {
        on::call_stats(&self.pool, id, stats).await
    }

    /// Calls `node` left unfinished (it stopped without ending them): marked ended now.
    pub async fn close_unfinished_calls(&self, node: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET end_at = $1, end_reason = 'interrupted' \
             WHERE node = $2 AND end_at IS NULL",
        )
        .bind(now_rfc3339())
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Sets what a call's record says of its recording (the API's DELETE).
    pub async fn set_call_recording(&self, id: &str, recording: &Value) -> Result<(), StoreError> {
        on::call_recording(&self.pool, id, recording).await
    }

    pub async fn call(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1 OR call_sid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| call_from(&r)).transpose()
    }

    /// A call's SIP trace or quality timeline (`column` is `sip` or `timeline`): `None` when the call is not
    /// known, `Some(Null)` when it has none (yet).
    pub async fn call_insight(&self, id: &str, column: Insight) -> Result<Option<Value>, StoreError> {
        let sql = match column {
            Insight::Sip => "SELECT sip FROM calls WHERE id = $1 OR call_sid = $1",
            Insight::Timeline => "SELECT timeline FROM calls WHERE id = $1 OR call_sid = $1",
        };
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| {
            json_column(&r, 0).map(|v| if v.as_object().is_some_and(|o| o.is_empty()) { Value::Null } else { v })
        })
        .transpose()
    }

    /// A page of calls, newest first, and the cursor of the next page (`None`: this was the last).
    pub async fn calls(&self, q: &CallQuery) -> Result<(Vec<CallRecord>, Option<String>), StoreError> {
        let mut sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        match q.active {
            Some(true) => sql.push_str(" AND end_at IS NULL"),
            Some(false) => sql.push_str(" AND end_at IS NOT NULL"),
            None => {}
        }
        if let Some(agent) = &q.agent {
            binds.push(agent.clone());
            sql.push_str(&format!(" AND agent = ${}", binds.len()));
        }
        if let Some(to) = &q.to {
            binds.push(to.clone());
            sql.push_str(&format!(" AND to_number = ${}", binds.len()));
        }
        if let Some(cursor) = &q.cursor {
            let (at, id) = decode_cursor(cursor)?;
            binds.push(at.clone());
            binds.push(at);
            binds.push(id);
            let n = binds.len();
            sql.push_str(&format!(" AND (invite_at < ${} OR (invite_at = ${} AND id < ${n}))", n - 2, n - 1));
        }
        let limit = q.limit.clamp(1, 500);
        sql.push_str(&format!(" ORDER BY invite_at DESC, id DESC LIMIT {}", limit + 1));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut calls: Vec<CallRecord> = rows.iter().map(call_from).collect::<Result<_, _>>()?;
        let next = if calls.len() > limit as usize {
            calls.truncate(limit as usize);
            calls.last().map(|c| encode_cursor(&c.invite_at, &c.id))
        } else {
            None
        };
        Ok((calls, next))
    }
}

fn call_from(r: &AnyRow) -> Result<CallRecord, StoreError> {
    Ok(CallRecord {
        id: r.try_get(0)?,
        call_sid: r.try_get(1)?,
        sip_call_id: r.try_get(2)?,
        from: r.try_get(3)?,
        to: r.try_get(4)?,
        agent: r.try_get(5)?,
        node: r.try_get(6)?,
        invite_at: r.try_get(7)?,
        answer_at: r.try_get(8)?,
        end_at: r.try_get(9)?,
        end_reason: r.try_get(10)?,
        sip_status: int_column(r, 11)?.and_then(|s| u16::try_from(s).ok()),
        codec: r.try_get(12)?,
        stats: json_column(r, 13)?,
        session: json_column(r, 14)
            .map(|s| if s.as_object().is_some_and(|o| o.is_empty()) { Value::Null } else { s })?,
        recording: json_column(r, 15)
            .map(|s| if s.as_object().is_some_and(|o| o.is_empty()) { Value::Null } else { s })?,
        sip: String::new(),
        timeline: Value::Null,
        route: r.try_get::<Option<String>, _>(16)?.map(std::borrow::Cow::Owned),
    })
}

fn encode_cursor(invite_at: &str, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{invite_at}|{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(String, String), StoreError> {
    use base64::Engine;
    let bad = || StoreError::Invalid(format!("cursor {cursor:?} is not one this API gave out"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, id) = text.split_once('|').ok_or_else(bad)?;
    Ok((at.to_string(), id.to_string()))
}
