// Package push is the multi-channel message platform: one API through which
// any business line sends notifications, marketing and verification codes.
// The domain types shared by its layers live here; the access layer, the
// handler, channels, trace, cron, admin and storage live below.
package push

import (
	"errors"
	"fmt"
	"time"
)

// Channel names a delivery channel.
type Channel string

// The channels of the external contract.
const (
	ChannelEmail             Channel = "email"
	ChannelSMS               Channel = "sms"
	ChannelDingTalkRobot     Channel = "dingtalk_robot"
	ChannelWeComRobot        Channel = "wecom_robot"
	ChannelFeishuRobot       Channel = "feishu_robot"
	ChannelWeChatOfficial    Channel = "wechat_official"
	ChannelWeChatMiniProgram Channel = "wechat_miniprogram"
	ChannelAppPush           Channel = "app_push"
	ChannelInbox             Channel = "inbox"
	ChannelWebhook           Channel = "webhook"
)

// Channels lists every channel.
func Channels() []Channel {
	return []Channel{ChannelEmail, ChannelSMS, ChannelDingTalkRobot, ChannelWeComRobot, ChannelFeishuRobot,
		ChannelWeChatOfficial, ChannelWeChatMiniProgram, ChannelAppPush, ChannelInbox, ChannelWebhook}
}

// MsgType is the kind of message; each channel × type has its own topic and
// worker pool, so marketing floods never delay verification codes.
type MsgType string

// Message types.
const (
	MsgNotice    MsgType = "notice"
	MsgMarketing MsgType = "marketing"
	MsgAuthCode  MsgType = "auth_code"
)

// MsgTypes lists every message type.
func MsgTypes() []MsgType { return []MsgType{MsgNotice, MsgMarketing, MsgAuthCode} }

// Kind is how a template is sent: now, or on a schedule from a crowd file.
type Kind string

// Template kinds; Code is the two-digit prefix of a businessId.
const (
	KindRealtime  Kind = "realtime"
	KindScheduled Kind = "scheduled"
)

// Code is the kind's two-digit code in the businessId: realtime 20, scheduled 10.
func (k Kind) Code() int {
	if k == KindScheduled {
		return 10
	}
	return 20
}

// Quiet is what a template does with a message due in the night window.
type Quiet string

// Quiet-hours policies.
const (
	QuietNone  Quiet = "none"
	QuietDrop  Quiet = "drop"
	QuietDelay Quiet = "delay"
)

// TemplateStatus is a template's place in its review cycle.
type TemplateStatus string

// Template statuses: draft → pending (submit) → approved | rejected; any → disabled.
const (
	StatusDraft    TemplateStatus = "draft"
	StatusPending  TemplateStatus = "pending"
	StatusApproved TemplateStatus = "approved"
	StatusRejected TemplateStatus = "rejected"
	StatusDisabled TemplateStatus = "disabled"
)

// Content is a template's content; which fields apply depends on the channel:
// email uses Subject, Body and HTML; the others use Text.
type Content struct {
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body,omitempty"`
	HTML    bool   `json:"html,omitempty"`
	Text    string `json:"text,omitempty"`
}

// Template is a message template. ID is an integer because the businessId
// embeds it.
type Template struct {
	ID        int64          `json:"id"`
	Name      string         `json:"name"`
	Channel   Channel        `json:"channel"`
	MsgType   MsgType        `json:"msgType"`
	Kind      Kind           `json:"kind"`
	AccountID string         `json:"accountId,omitempty"`
	Quiet     Quiet          `json:"quiet"`
	TimeZone  string         `json:"timezone"`
	Content   Content        `json:"content"`
	Status    TemplateStatus `json:"status"`
	// Version grows with every change, so caches can tell an edit.
	Version   int64     `json:"version"`
	CreatedBy string    `json:"createdBy,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// The review trail: who submitted and reviewed, when, and why rejected.
	SubmittedBy  string     `json:"submittedBy,omitempty"`
	SubmittedAt  *time.Time `json:"submittedAt,omitempty"`
	ReviewedBy   string     `json:"reviewedBy,omitempty"`
	ReviewedAt   *time.Time `json:"reviewedAt,omitempty"`
	RejectReason string     `json:"rejectReason,omitempty"`
}

// BusinessID is the seed's 16-digit id of a template's sends on one day:
// kind code (2) + template id zero-padded (6) + date yyyyMMdd (8) in loc.
func BusinessID(kind Kind, templateID int64, at time.Time, loc *time.Location) string {
	return fmt.Sprintf("%02d%06d%s", kind.Code(), templateID%1_000_000, at.In(loc).Format("20060102"))
}

// Topic is the queue topic of one channel × message type.
func Topic(ch Channel, mt MsgType) string { return "push." + string(ch) + "." + string(mt) }

// Task is one message on its way to its receivers: what the access layer
// publishes and a handler consumes.
type Task struct {
	MessageID       string    `json:"messageId"`
	BusinessID      string    `json:"businessId"`
	TemplateID      int64     `json:"templateId"`
	TemplateVersion int64     `json:"templateVersion"`
	Channel         Channel   `json:"channel"`
	MsgType         MsgType   `json:"msgType"`
	AccountID       string    `json:"accountId,omitempty"`
	Quiet           Quiet     `json:"quiet"`
	TimeZone        string    `json:"timezone"`
	Receivers       []string  `json:"receivers"`
	Subject         string    `json:"subject,omitempty"`
	Text            string    `json:"text"`
	HTML            string    `json:"html,omitempty"`
	BizID           string    `json:"bizId,omitempty"`
	CreatedAt       time.Time `json:"createdAt"`
	// Retry is set when the task is a retry; a retried task skips dedup.
	Retry int `json:"retry,omitempty"`
}

// Anchor states, as the trace API reports them.
const (
	StateReceived            = "received"
	StateInvalidReceiver     = "invalid_receiver"
	StateDiscarded           = "discarded"
	StateQuietDropped        = "quiet_dropped"
	StateQuietDelayed        = "quiet_delayed"
	StateContentDeduplicated = "content_deduplicated"
	StateFrequencyCapped     = "frequency_capped"
	StateNotWhitelisted      = "not_whitelisted"
	StateSent                = "sent"
	StateSendFailed          = "send_failed"
	StateRecalled            = "recalled"
	// StateDelivered and StateUndelivered come from channels that report
	// delivery later (receipts), after sent.
	StateDelivered   = "delivered"
	StateUndelivered = "undelivered"
)

// TraceTopic is the queue topic every stage's anchors are published to.
const TraceTopic = "push.trace"

// Anchor is one step of one message's life for one receiver.
type Anchor struct {
	EventID    string    `json:"eventId"`
	MessageID  string    `json:"messageId"`
	BusinessID string    `json:"businessId"`
	Receiver   string    `json:"receiver"`
	State      string    `json:"state"`
	At         time.Time `json:"at"`
	Detail     string    `json:"detail,omitempty"`
}

// Domain errors; the HTTP edge maps each to its stable code.
var (
	ErrUnknownTemplate     = errors.New("unknown template")
	ErrTemplateNotApproved = errors.New("template not approved")
	ErrUnknownAccount      = errors.New("unknown channel account")
	ErrInvalidTransition   = errors.New("invalid template status transition")
)
