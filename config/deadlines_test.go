package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateDeadlinesRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		key    string
		msg    string
	}{
		{"no request timeout", func(c *Config) { c.RequestTimeout = 0 }, "request_timeout", "must be from 100ms to 30s"},
		{"request timeout too short to answer", func(c *Config) { c.RequestTimeout = Duration(time.Millisecond) }, "request_timeout", "(got 1ms)"},
		{"request timeout past the server's write timeout", func(c *Config) { c.RequestTimeout = Duration(time.Minute) }, "request_timeout", "the HTTP server cuts the answer off"},
		{"no dial timeout", func(c *Config) { c.Redis.DialTimeout = 0 }, "redis.dial_timeout", "must be more than 0 and at most 1m0s, like 2s (got 0s)"},
		{"negative read timeout", func(c *Config) { c.Redis.ReadTimeout = Duration(-time.Second) }, "redis.read_timeout", "must be more than 0"},
		{"read timeout past a minute", func(c *Config) { c.Redis.ReadTimeout = Duration(2 * time.Minute) }, "redis.read_timeout", "at most 1m0s"},
		{"no write timeout", func(c *Config) { c.Redis.WriteTimeout = 0 }, "redis.write_timeout", "like 3s"},
		{"no pool timeout", func(c *Config) { c.Redis.PoolTimeout = 0 }, "redis.pool_timeout", "like 4s"},
		{"negative pool size", func(c *Config) { c.Redis.PoolSize = -1 }, "redis.pool_size", "must be 0 (10 per CPU) to 10000 connections per node (got -1)"},
		{"pool size beyond any Redis", func(c *Config) { c.Redis.PoolSize = 100000 }, "redis.pool_size", "(got 100000)"},
		{"negative retries", func(c *Config) { c.Redis.MaxRetries = -1 }, "redis.max_retries", "must be 0 (never, the default) to 10 (got -1)"},
		{"retries without end", func(c *Config) { c.Redis.MaxRetries = 100 }, "redis.max_retries", "(got 100)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(c)
			ps := problems(t, c.Validate())
			if len(ps) != 1 || ps[0].Key != tt.key || !strings.Contains(ps[0].Message, tt.msg) {
				t.Fatalf("problems = %v\nwant one for %s containing %q", ps, tt.key, tt.msg)
			}
		})
	}
}

func TestValidateDeadlinesAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"shortest request timeout", func(c *Config) { c.RequestTimeout = Duration(100 * time.Millisecond) }},
		{"longest request timeout", func(c *Config) { c.RequestTimeout = Duration(30 * time.Second) }},
		{"a minute for a reply", func(c *Config) { c.Redis.ReadTimeout = Duration(time.Minute) }},
		{"an explicit pool", func(c *Config) { c.Redis.PoolSize = 64 }},
		{"retries asked for", func(c *Config) { c.Redis.MaxRetries = 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDeadlineDefaults(t *testing.T) {
	t.Parallel()
	c := Defaults()
	want := Redis{
		DialTimeout: Duration(2 * time.Second), ReadTimeout: Duration(3 * time.Second),
		WriteTimeout: Duration(3 * time.Second), PoolTimeout: Duration(4 * time.Second),
	}
	got := c.Redis
	got.Cluster = nil
	if got.URL != "" || got.DialTimeout != want.DialTimeout || got.ReadTimeout != want.ReadTimeout ||
		got.WriteTimeout != want.WriteTimeout || got.PoolTimeout != want.PoolTimeout || got.PoolSize != 0 || got.MaxRetries != 0 {
		t.Errorf("redis defaults = %+v, want %+v", got, want)
	}
	if c.RequestTimeout != Duration(10*time.Second) {
		t.Errorf("request_timeout = %s, want 10s", c.RequestTimeout.Std())
	}
}

// The new keys come from the file and from the environment like every other, the environment
// winning.
func TestDeadlinesFromFileAndEnv(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "tongban.yaml", "dev: true\nrequest_timeout: 4s\nredis:\n  read_timeout: 1500ms\n  max_retries: 2\n")
	c, err := Load(file, []string{"TONGBAN_REDIS_READ_TIMEOUT=750ms", "TONGBAN_REDIS_POOL_SIZE=32", "TONGBAN_REQUEST_TIMEOUT=6s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.RequestTimeout != Duration(6*time.Second) || c.Redis.ReadTimeout != Duration(750*time.Millisecond) ||
		c.Redis.MaxRetries != 2 || c.Redis.PoolSize != 32 || c.Redis.DialTimeout != Duration(2*time.Second) {
		t.Errorf("got request_timeout %s, redis %+v", c.RequestTimeout.Std(), c.Redis)
	}
}
