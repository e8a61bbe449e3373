package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/waypost/waypost/internal/push"
)

// Account is a channel account: the provider settings a template sends
// through. Config holds secrets masked or decrypted depending on the method
// that returned it.
type Account struct {
	ID        string         `json:"id"`
	Channel   push.Channel   `json:"channel"`
	Name      string         `json:"name"`
	Config    map[string]any `json:"config"`
	CreatedAt time.Time      `json:"createdAt"`
	UpdatedAt time.Time      `json:"updatedAt"`
}

// Page selects a slice of a list, newest first: Offset rows are skipped and
// at most Limit returned (DefaultLimit when ≤ 0, MaxLimit at most).
type Page struct {
	Limit  int
	Offset int
}

// Paging bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

func (p Page) norm() Page {
	if p.Limit <= 0 {
		p.Limit = DefaultLimit
	}
	p.Limit = min(p.Limit, MaxLimit)
	p.Offset = max(p.Offset, 0)
	return p
}

func newAccountID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "acc_" + hex.EncodeToString(b)
}

func accountAAD(id, path string) string { return "push/account/" + id + "/" + path }

// sealConfig returns cfg serialised with every secret encrypted.
func (s *Store) sealConfig(id string, cfg map[string]any) (string, error) {
	c, err := cloneConfig(cfg)
	if err != nil {
		return "", err
	}
	if err := walkSecrets(c, "", func(path, v string) (string, error) {
		return s.seal.seal(v, accountAAD(id, path)), nil
	}); err != nil {
		return "", err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode config: %w", err)
	}
	return string(b), nil
}

// openConfig parses a stored config, decrypting secrets when decrypt is set
// and masking them otherwise.
func (s *Store) openConfig(id, raw string, decrypt bool) (map[string]any, error) {
	var cfg map[string]any
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return nil, fmt.Errorf("decode config of account %s: %w", id, err)
	}
	err := walkSecrets(cfg, "", func(path, v string) (string, error) {
		pt, err := s.seal.open(v, accountAAD(id, path))
		if err != nil {
			return "", err
		}
		if decrypt {
			return pt, nil
		}
		return Mask(pt), nil
	})
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", id, err)
	}
	return cfg, nil
}

func cloneConfig(cfg map[string]any) (map[string]any, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	return out, nil
}

// CreateAccount stores a new account with its secrets encrypted and returns
// it with secrets masked. The caller validates cfg for the channel.
func (s *Store) CreateAccount(ctx context.Context, ch push.Channel, name string, cfg map[string]any) (Account, error) {
	id := newAccountID()
	raw, err := s.sealConfig(id, cfg)
	if err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	now := micros(s.now())
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO push_channel_accounts (id, channel, name, config, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`), id, string(ch), name, raw, now, now)
	if err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	return s.Account(ctx, id)
}

const accountCols = "id, channel, name, config, created_at, updated_at"

func (s *Store) scanAccount(row interface{ Scan(...any) error }, decrypt bool) (Account, error) {
	var (
		a                Account
		ch, raw          string
		created, updated int64
	)
	if err := row.Scan(&a.ID, &ch, &a.Name, &raw, &created, &updated); err != nil {
		return Account{}, err
	}
	cfg, err := s.openConfig(a.ID, raw, decrypt)
	if err != nil {
		return Account{}, err
	}
	a.Channel, a.Config = push.Channel(ch), cfg
	a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
	return a, nil
}

func (s *Store) account(ctx context.Context, id string, decrypt bool) (Account, error) {
	row := s.db.QueryRowContext(ctx, s.q("SELECT "+accountCols+" FROM push_channel_accounts WHERE id = ?"), id)
	a, err := s.scanAccount(row, decrypt)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account %s: %w", id, push.ErrUnknownAccount)
	}
	if err != nil {
		return Account{}, fmt.Errorf("load account %s: %w", id, err)
	}
	return a, nil
}

// Account returns account id with its secrets masked, for display.
func (s *Store) Account(ctx context.Context, id string) (Account, error) {
	return s.account(ctx, id, false)
}

// AccountForSending returns account id with its secrets decrypted, for a
// channel sender; never hand its result to an API response.
func (s *Store) AccountForSending(ctx context.Context, id string) (Account, error) {
	return s.account(ctx, id, true)
}

// ListAccounts returns accounts newest first, secrets masked; channel
// filters when not empty.
func (s *Store) ListAccounts(ctx context.Context, channel push.Channel, p Page) ([]Account, error) {
	p = p.norm()
	query := "SELECT " + accountCols + " FROM push_channel_accounts"
	args := []any{}
	if channel != "" {
		query += " WHERE channel = ?"
		args = append(args, string(channel))
	}
	query += " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
	args = append(args, p.Limit, p.Offset)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []Account{}
	for rows.Next() {
		a, err := s.scanAccount(rows, false)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// UpdateAccount loads account id with secrets decrypted, lets edit change
// its Name and Config (an error from edit aborts), stores it re-encrypted
// and returns it masked. The channel cannot change.
func (s *Store) UpdateAccount(ctx context.Context, id string, edit func(a *Account) error) (Account, error) {
	a, err := s.AccountForSending(ctx, id)
	if err != nil {
		return Account{}, err
	}
	ch := a.Channel
	if err := edit(&a); err != nil {
		return Account{}, err
	}
	if a.Channel != ch {
		return Account{}, fmt.Errorf("update account %s: the channel cannot change", id)
	}
	raw, err := s.sealConfig(id, a.Config)
	if err != nil {
		return Account{}, fmt.Errorf("update account %s: %w", id, err)
	}
	res, err := s.db.ExecContext(ctx, s.q("UPDATE push_channel_accounts SET name = ?, config = ?, updated_at = ? WHERE id = ?"),
		a.Name, raw, micros(s.now()), id)
	if err != nil {
		return Account{}, fmt.Errorf("update account %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Account{}, fmt.Errorf("update account %s: %w", id, push.ErrUnknownAccount)
	}
	return s.Account(ctx, id)
}

// DeleteAccount removes account id unless a template that is not disabled
// still uses it (ErrAccountInUse).
func (s *Store) DeleteAccount(ctx context.Context, id string) error {
	if _, err := s.Account(ctx, id); err != nil {
		return err
	}
	var n int
	err := s.db.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM push_templates WHERE account_id = ? AND status <> ?"),
		id, string(push.StatusDisabled)).Scan(&n)
	if err != nil {
		return fmt.Errorf("delete account %s: %w", id, err)
	}
	if n > 0 {
		return fmt.Errorf("delete account %s: %d templates use it: %w", id, n, ErrAccountInUse)
	}
	if _, err := s.db.ExecContext(ctx, s.q("DELETE FROM push_channel_accounts WHERE id = ?"), id); err != nil {
		return fmt.Errorf("delete account %s: %w", id, err)
	}
	return nil
}
