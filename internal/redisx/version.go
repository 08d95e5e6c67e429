package redisx

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// MinVersion is the oldest Redis Tongban runs on: sign-in claims keys with SET … NX GET, which
// Redis 6.2 refuses.
var MinVersion = [2]int{7, 0}

// CheckVersion returns an error naming the server when a real Redis (every master of a cluster)
// is older than MinVersion. The embedded store implements what Tongban uses and is not checked.
// A server that does not answer is not an error here: readiness reports it.
func (s *Store) CheckVersion(ctx context.Context) error {
	if s.Kind == KindEmbedded {
		return nil
	}
	var mu sync.Mutex
	var problems []string
	check := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return nil
		}
		if v, ok := parseVersion(info); ok && (v[0] < MinVersion[0] || v[0] == MinVersion[0] && v[1] < MinVersion[1]) {
			mu.Lock()
			problems = append(problems, fmt.Sprintf("%s runs Redis %d.%d", c.Options().Addr, v[0], v[1]))
			mu.Unlock()
		}
		return nil
	}
	switch c := s.Client.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, check)
	case *redis.Client:
		_ = check(ctx, c)
	}
	if len(problems) > 0 {
		return fmt.Errorf("redisx: Tongban needs Redis %d.%d or later: %s", MinVersion[0], MinVersion[1], strings.Join(problems, "; "))
	}
	return nil
}

// parseVersion reads redis_version from INFO server.
func parseVersion(info string) ([2]int, bool) {
	for _, line := range strings.Split(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		parts := strings.SplitN(v, ".", 3)
		if len(parts) < 2 {
			return [2]int{}, false
		}
		major, err1 := strconv.Atoi(parts[0])
		minor, err2 := strconv.Atoi(parts[1])
		return [2]int{major, minor}, err1 == nil && err2 == nil
	}
	return [2]int{}, false
}
