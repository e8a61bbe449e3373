package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/push"
)

// Action is a step of a template's review cycle.
type Action string

// Template actions.
const (
	ActionSubmit  Action = "submit"
	ActionApprove Action = "approve"
	ActionReject  Action = "reject"
	// ActionEdit is any change of content or settings. It returns a template
	// to draft from every status but disabled, so an edit of an approved
	// template stops it sending until it is approved again.
	ActionEdit    Action = "edit"
	ActionDisable Action = "disable"
)

// Next is the status machine: the status a template in from moves to under
// a, or push.ErrInvalidTransition.
//
//	draft    --submit-->  pending
//	pending  --approve--> approved
//	pending  --reject-->  rejected
//	draft|pending|approved|rejected --edit--> draft
//	any      --disable--> disabled
func Next(from push.TemplateStatus, a Action) (push.TemplateStatus, error) {
	switch {
	case a == ActionSubmit && from == push.StatusDraft:
		return push.StatusPending, nil
	case a == ActionApprove && from == push.StatusPending:
		return push.StatusApproved, nil
	case a == ActionReject && from == push.StatusPending:
		return push.StatusRejected, nil
	case a == ActionEdit && from != push.StatusDisabled:
		return push.StatusDraft, nil
	case a == ActionDisable:
		return push.StatusDisabled, nil
	}
	return "", fmt.Errorf("%s a %s template: %w", a, from, push.ErrInvalidTransition)
}

// TemplateFilter narrows ListTemplates; empty fields match everything.
type TemplateFilter struct {
	Channel push.Channel
	Status  push.TemplateStatus
}

const templateCols = `id, name, channel, msg_type, kind, account_id, quiet, timezone, content, status, version,
	created_by, created_at, updated_at, submitted_by, submitted_at, reviewed_by, reviewed_at, reject_reason`

func scanTemplate(row interface{ Scan(...any) error }) (push.Template, error) {
	var (
		t                       push.Template
		ch, mt, kind, quiet, st string
		content                 string
		created, updated        int64
		submitted, reviewed     sql.NullInt64
	)
	err := row.Scan(&t.ID, &t.Name, &ch, &mt, &kind, &t.AccountID, &quiet, &t.TimeZone, &content, &st, &t.Version,
		&t.CreatedBy, &created, &updated, &t.SubmittedBy, &submitted, &t.ReviewedBy, &reviewed, &t.RejectReason)
	if err != nil {
		return push.Template{}, err
	}
	if err := json.Unmarshal([]byte(content), &t.Content); err != nil {
		return push.Template{}, fmt.Errorf("decode content of template %d: %w", t.ID, err)
	}
	t.Channel, t.MsgType, t.Kind, t.Quiet, t.Status = push.Channel(ch), push.MsgType(mt), push.Kind(kind), push.Quiet(quiet), push.TemplateStatus(st)
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	t.SubmittedAt, t.ReviewedAt = fromNullMicros(submitted), fromNullMicros(reviewed)
	return t, nil
}

func nullMicros(t *push.Template, which string) sql.NullInt64 {
	var v = t.SubmittedAt
	if which == "reviewed" {
		v = t.ReviewedAt
	}
	if v == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*v), Valid: true}
}

// CreateTemplate stores t as a new draft at version 1 created by by, and
// returns it with its id. The caller validates t.
func (s *Store) CreateTemplate(ctx context.Context, t push.Template, by string) (push.Template, error) {
	content, err := json.Marshal(t.Content)
	if err != nil {
		return push.Template{}, fmt.Errorf("create template: encode content: %w", err)
	}
	now := micros(s.now())
	args := []any{t.Name, string(t.Channel), string(t.MsgType), string(t.Kind), t.AccountID, string(t.Quiet), t.TimeZone,
		string(content), string(push.StatusDraft), 1, by, now, now}
	insert := `INSERT INTO push_templates (name, channel, msg_type, kind, account_id, quiet, timezone, content, status, version,
		created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	var id int64
	if s.db.Dialect == sqldb.MySQL {
		res, err := s.db.ExecContext(ctx, insert, args...)
		if err != nil {
			return push.Template{}, fmt.Errorf("create template: %w", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return push.Template{}, fmt.Errorf("create template: %w", err)
		}
	} else if err := s.db.QueryRowContext(ctx, s.q(insert+" RETURNING id"), args...).Scan(&id); err != nil {
		return push.Template{}, fmt.Errorf("create template: %w", err)
	}
	return s.Template(ctx, id)
}

// Template returns template id whatever its status.
func (s *Store) Template(ctx context.Context, id int64) (push.Template, error) {
	t, err := scanTemplate(s.db.QueryRowContext(ctx, s.q("SELECT "+templateCols+" FROM push_templates WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return push.Template{}, fmt.Errorf("template %d: %w", id, push.ErrUnknownTemplate)
	}
	if err != nil {
		return push.Template{}, fmt.Errorf("load template %d: %w", id, err)
	}
	return t, nil
}

// ListTemplates returns templates newest first (by id).
func (s *Store) ListTemplates(ctx context.Context, f TemplateFilter, p Page) ([]push.Template, error) {
	p = p.norm()
	query := "SELECT " + templateCols + " FROM push_templates WHERE 1 = 1"
	var args []any
	if f.Channel != "" {
		query += " AND channel = ?"
		args = append(args, string(f.Channel))
	}
	if f.Status != "" {
		query += " AND status = ?"
		args = append(args, string(f.Status))
	}
	query += " ORDER BY id DESC LIMIT ? OFFSET ?"
	args = append(args, p.Limit, p.Offset)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []push.Template{}
	for rows.Next() {
		t, err := scanTemplate(rows)
		if err != nil {
			return nil, fmt.Errorf("list templates: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	return out, nil
}

// maxAttempts bounds the retries of a change that lost a race to another.
const maxAttempts = 8

// modify applies change to template id and stores it at the next version,
// conditionally on the version it read, so two concurrent changes never
// both apply to the same version. ifVersion, when not 0, is the version the
// caller saw: if the template has moved on, ErrVersionConflict. Without it
// a lost race is retried on the fresh template.
func (s *Store) modify(ctx context.Context, id, ifVersion int64, change func(t *push.Template) (bool, error)) (push.Template, error) {
	for range maxAttempts {
		t, err := s.Template(ctx, id)
		if err != nil {
			return push.Template{}, err
		}
		if ifVersion != 0 && t.Version != ifVersion {
			return push.Template{}, fmt.Errorf("template %d is at version %d, not %d: %w", id, t.Version, ifVersion, ErrVersionConflict)
		}
		read := t.Version
		changed, err := change(&t)
		if err != nil || !changed {
			return t, err
		}
		content, err := json.Marshal(t.Content)
		if err != nil {
			return push.Template{}, fmt.Errorf("update template %d: encode content: %w", id, err)
		}
		res, err := s.db.ExecContext(ctx, s.q(`UPDATE push_templates SET name = ?, msg_type = ?, kind = ?, account_id = ?,
			quiet = ?, timezone = ?, content = ?, status = ?, version = ?, updated_at = ?, submitted_by = ?, submitted_at = ?,
			reviewed_by = ?, reviewed_at = ?, reject_reason = ? WHERE id = ? AND version = ?`),
			t.Name, string(t.MsgType), string(t.Kind), t.AccountID, string(t.Quiet), t.TimeZone, string(content),
			string(t.Status), read+1, micros(s.now()), t.SubmittedBy, nullMicros(&t, "submitted"),
			t.ReviewedBy, nullMicros(&t, "reviewed"), t.RejectReason, id, read)
		if err != nil {
			return push.Template{}, fmt.Errorf("update template %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return s.Template(ctx, id)
		}
		if ifVersion != 0 {
			return push.Template{}, fmt.Errorf("template %d changed meanwhile: %w", id, ErrVersionConflict)
		}
	}
	return push.Template{}, fmt.Errorf("template %d: too many concurrent changes: %w", id, ErrVersionConflict)
}

// UpdateTemplate applies edit to template id (not its channel) and returns
// it to draft; see ActionEdit. edit may fail to abort, e.g. on invalid input.
func (s *Store) UpdateTemplate(ctx context.Context, id, ifVersion int64, edit func(t *push.Template) error) (push.Template, error) {
	return s.modify(ctx, id, ifVersion, func(t *push.Template) (bool, error) {
		to, err := Next(t.Status, ActionEdit)
		if err != nil {
			return false, fmt.Errorf("template %d: %w", id, err)
		}
		ch := t.Channel
		if err := edit(t); err != nil {
			return false, err
		}
		t.Channel = ch
		t.Status = to
		return true, nil
	})
}

// Transition moves template id through a (submit, approve, reject or
// disable) by principal by, recording who and when; reason is kept for a
// rejection. Disabling a disabled template changes nothing.
func (s *Store) Transition(ctx context.Context, id, ifVersion int64, a Action, by, reason string) (push.Template, error) {
	if a == ActionEdit {
		return push.Template{}, fmt.Errorf("template %d: use UpdateTemplate to edit", id)
	}
	return s.modify(ctx, id, ifVersion, func(t *push.Template) (bool, error) {
		if a == ActionDisable && t.Status == push.StatusDisabled {
			return false, nil
		}
		to, err := Next(t.Status, a)
		if err != nil {
			return false, fmt.Errorf("template %d: %w", id, err)
		}
		now := fromMicros(micros(s.now()))
		switch a {
		case ActionSubmit:
			t.SubmittedBy, t.SubmittedAt = by, &now
			t.ReviewedBy, t.ReviewedAt, t.RejectReason = "", nil, ""
		case ActionApprove:
			t.ReviewedBy, t.ReviewedAt, t.RejectReason = by, &now, ""
		case ActionReject:
			t.ReviewedBy, t.ReviewedAt, t.RejectReason = by, &now, reason
		}
		t.Status = to
		return true, nil
	})
}

// CopyTemplate creates a new draft with template id's settings and content,
// named "<name> (copy)", created by by.
func (s *Store) CopyTemplate(ctx context.Context, id int64, by string) (push.Template, error) {
	t, err := s.Template(ctx, id)
	if err != nil {
		return push.Template{}, err
	}
	name := t.Name + " (copy)"
	if r := []rune(name); len(r) > 191 {
		name = string(r[:191])
	}
	t.Name = name
	return s.CreateTemplate(ctx, t, by)
}
