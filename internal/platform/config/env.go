package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every environment variable that sets a config key.
const EnvPrefix = "WAYPOST_"

var durationType = reflect.TypeFor[time.Duration]()

// field is one leaf setting of Config, found by walking its yaml tags.
type field struct {
	path   []string // yaml tag path, e.g. ["kv", "redis", "addr"]
	value  reflect.Value
	secret string // "", "true" or "dsn"
}

func (f field) env() string  { return EnvPrefix + strings.ToUpper(strings.Join(f.path, "_")) }
func (f field) name() string { return strings.Join(f.path, ".") }

// leaves lists every settable leaf of v (a pointer to a struct), depth first.
func leaves(v reflect.Value, prefix []string) []field {
	v = v.Elem()
	t := v.Type()
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		path := append(append([]string(nil), prefix...), tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != durationType {
			out = append(out, leaves(fv.Addr(), path)...)
			continue
		}
		out = append(out, field{path: path, value: fv, secret: sf.Tag.Get("secret")})
	}
	return out
}

// EnvNames lists the environment variable of every setting, in field order.
func EnvNames() []string {
	var c Config
	var names []string
	for _, f := range leaves(reflect.ValueOf(&c), nil) {
		names = append(names, f.env())
	}
	return names
}

// applyEnv sets every field whose WAYPOST_* variable appears in environ.
func applyEnv(cfg *Config, environ []string) error {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	for _, f := range leaves(reflect.ValueOf(cfg), nil) {
		raw, ok := env[f.env()]
		if !ok {
			continue
		}
		if err := setValue(f.value, raw); err != nil {
			return fmt.Errorf("%s: %w", f.env(), err)
		}
	}
	return nil
}

// setValue parses raw into v according to v's type.
func setValue(v reflect.Value, raw string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("want a duration like 15s: %w", err)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("want true or false: %w", err)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer: %w", err)
		}
		v.SetInt(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("want a number: %w", err)
		}
		v.SetFloat(n)
	case reflect.Slice:
		var items []string
		for s := range strings.SplitSeq(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}
