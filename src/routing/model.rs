use crate::db::entities::conversation::Status;

/// What a conversation listing may be narrowed to.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConversationFilter {
    pub status: Option<Status>,
    pub queue_id: Option<i64>,
    /// Only conversations held (or closed) by this agent.
    pub agent_id: Option<i64>,
}

/// An inbound contact as the client gave it.
pub struct NewConversation {
    pub queue_id: Option<i64>,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
}

/// Customer names are free text, but bounded.
pub const MAX_CUSTOMER_NAME_CHARS: usize = 200;
