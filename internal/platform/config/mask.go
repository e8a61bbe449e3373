package config

import (
	"fmt"
	"reflect"

	"gopkg.in/yaml.v3"

	"github.com/waypost/waypost/internal/platform/sqldb"
)

// Mask is what a secret is replaced with when printed (the same mark
// sqldb.MaskDSN uses inside connection strings).
const Mask = "***"

// Masked returns a copy of c with every secret replaced by Mask; in DSNs and
// URLs only the password is masked (sqldb.MaskDSN), so the address stays
// readable.
func (c Config) Masked() Config {
	out := c
	out.Queue.Kafka.Brokers = append([]string(nil), c.Queue.Kafka.Brokers...)
	out.Push.Roles = append([]string(nil), c.Push.Roles...)
	for _, f := range leaves(reflect.ValueOf(&out), nil) {
		if f.value.Kind() != reflect.String || f.value.String() == "" {
			continue
		}
		switch f.secret {
		case "true":
			f.value.SetString(Mask)
		case "dsn":
			f.value.SetString(sqldb.MaskDSN(f.value.String()))
		}
	}
	return out
}

// YAML renders the masked configuration as YAML, for --print-config and logs.
func (c Config) YAML() ([]byte, error) {
	b, err := yaml.Marshal(c.Masked())
	if err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return b, nil
}
