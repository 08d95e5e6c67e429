package main

import (
	"bytes"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// The whole command line, by what each invocation is: the exit code, and a piece of what it
// must print on stdout or stderr. None of these starts a server: serve is reached only with a
// configuration that fails to load.
func TestCommandLineSurface(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	example := "../../tongban.example.yaml"
	noRedis := []string{"TONGBAN_REDIS_URL=redis://127.0.0.1:1/0"}
	// A dev configuration's commands work on a running dev server's store; none listens here.
	noDevServer := []string{"TONGBAN_REDIS_EMBEDDED_ADDR=127.0.0.1:1"}
	for _, tc := range []struct {
		name       string
		args, env  []string
		code       int
		stdout     string
		stderr     string
		notStderr  string
		stderrRows int // when not 0, the number of lines stderr must have
	}{
		// help, in every spelling, on stdout and exit 0
		{name: "--help lists every command", args: []string{"--help"}, stdout: "config check"},
		{name: "-h lists every command", args: []string{"-h"}, stdout: "keys rotate"},
		{name: "help lists every command", args: []string{"help"}, stdout: "tongban help <command>"},
		{name: "help of a command", args: []string{"help", "keys", "rotate"}, stdout: "Usage: tongban keys rotate [--config FILE]"},
		{name: "--help after a command shows that command", args: []string{"config", "check", "--help"}, stdout: "Usage: tongban config check"},
		{name: "--help before a command shows that command", args: []string{"--help", "version"}, stdout: "Usage: tongban version"},
		{name: "version", args: []string{"version"}, stdout: "tongban "},
		{name: "help of a group lists its commands", args: []string{"help", "keys"}, stdout: "Usage: tongban keys <command> [--config FILE]\n\nCommands:\n  keys rotate "},
		{name: "help of the config group", args: []string{"help", "config"}, stdout: "  config check "},
		{name: "--help of a group", args: []string{"keys", "--help"}, stdout: "  keys rotate "},
		{name: "help of a command taking a file", args: []string{"help", "config", "check"}, stdout: "Usage: tongban config check [FILE | --config FILE]"},
		{name: "--help after a file argument", args: []string{"config", "check", example, "--help"}, stdout: "Usage: tongban config check [FILE | --config FILE]"},

		// refused command lines: usage on stderr, exit 2
		{name: "unknown command", args: []string{"bogus"}, code: 2, stderr: `unknown command "bogus"`},
		{name: "unknown command is not served", args: []string{"bogus", "--config", missing}, code: 2, stderr: "Commands:", notStderr: "missing.yaml"},
		{name: "a command's first word only", args: []string{"keys"}, code: 2, stderr: "did you mean tongban keys rotate?"},
		{name: "unknown subcommand", args: []string{"keys", "list"}, code: 2, stderr: `unknown command "keys list"`},
		{name: "extra argument", args: []string{"version", "now"}, code: 2, stderr: `unexpected argument "now"`},
		{name: "extra argument to serve", args: []string{"serve", "now"}, code: 2, stderr: `tongban serve: unexpected argument "now"`},
		{name: "help of an unknown command", args: []string{"help", "bogus"}, code: 2, stderr: `tongban help: unknown command "bogus"`},
		{name: "help of an unknown command prints usage", args: []string{"help", "bogus"}, code: 2, stderr: "Commands:\n  serve "},
		{name: "help of an unknown subcommand", args: []string{"help", "keys", "list"}, code: 2, stderr: `tongban help: unknown command "keys list"`},
		{name: "help of a command with an argument", args: []string{"help", "version", "now"}, code: 2, stderr: `unknown command "version now"`},
		{name: "config check takes one file, not two", args: []string{"config", "check", example, missing}, code: 2,
			stderr: "Usage: tongban config check [FILE | --config FILE]"},
		{name: "config check's second file is named", args: []string{"config", "check", example, missing}, code: 2,
			stderr: `unexpected argument "` + missing + `": one configuration file at most`},
		{name: "config check with FILE and another --config", args: []string{"config", "check", example, "--config", missing}, code: 2,
			stderr: "two configuration files"},
		{name: "a file argument only where a command takes one", args: []string{"keys", "rotate", example}, code: 2,
			stderr: `tongban keys rotate: unexpected argument "` + example + `"`},
		{name: "unknown flag", args: []string{"--nope"}, code: 2, stderr: "flag provided but not defined: -nope"},
		{name: "unknown flag after a command", args: []string{"version", "--nope"}, code: 2, stderr: "flag provided but not defined"},
		{name: "flag without its value", args: []string{"serve", "--config"}, code: 2, stderr: "flag needs an argument: -config"},
		{name: "words after -- are words, not flags", args: []string{"--", "--config"}, code: 2, stderr: `unknown command "--config"`},

		// --config before or after the command's words
		{name: "serve with --config after", args: []string{"serve", "--config", missing}, code: 2, stderr: "missing.yaml"},
		{name: "keys rotate with --config after", args: []string{"keys", "rotate", "--config", missing}, code: 2, stderr: "missing.yaml"},
		{name: "keys rotate with --config before", args: []string{"--config", missing, "keys", "rotate"}, code: 2, stderr: "missing.yaml"},
		{name: "keys rotate with --config= between", args: []string{"keys", "--config=" + missing, "rotate"}, code: 2, stderr: "missing.yaml"},

		// config check: problems exit 1, a good configuration 0
		{name: "config check in dev mode", args: []string{"config", "check"}, stdout: "ok: no configuration file: dev mode"},
		{name: "config check of the published example", args: []string{"config", "check", "--config", example}, code: 1,
			stderr: "published in tongban.example.yaml", stderrRows: 11},
		{name: "config check of a missing file", args: []string{"config", "check", "--config", missing}, code: 1, stderr: "missing.yaml"},
		{name: "config check FILE as --config FILE", args: []string{"config", "check", example}, code: 1,
			stderr: "published in tongban.example.yaml", stderrRows: 11},
		{name: "config check FILE after --config of the same file", args: []string{"--config", example, "config", "check", example}, code: 1,
			stderr: "published in tongban.example.yaml", stderrRows: 11},
		{name: "config check of a missing FILE", args: []string{"config", "check", missing}, code: 1, stderr: "missing.yaml"},
		{name: "config check FILE wins over TONGBAN_CONFIG", args: []string{"config", "check", example}, env: []string{"TONGBAN_CONFIG=" + missing}, code: 1,
			stderr: "published in tongban.example.yaml", notStderr: "missing.yaml"},
		{name: "config check through TONGBAN_CONFIG", args: []string{"config", "check"}, env: []string{"TONGBAN_CONFIG=" + missing}, code: 1, stderr: "missing.yaml"},

		// keys rotate: the store's failure said once, with what was being done
		{name: "keys rotate with no dev server beside it", args: []string{"keys", "rotate"}, env: noDevServer, code: 1, stderr: "no dev server is running here"},
		{name: "keys rotate with Redis not answering", args: []string{"keys", "rotate"}, env: noRedis, code: 1,
			stderr: "tongban keys rotate: ", notStderr: "pool.go", stderrRows: 1},

		// federation: the subordinates, on the configured Redis
		{name: "help of the federation group", args: []string{"help", "federation"}, stdout: "  federation list "},
		{name: "help of add-subordinate shows its arguments", args: []string{"help", "federation", "add-subordinate"},
			stdout: "Usage: tongban federation add-subordinate <entity-id> (--jwks FILE | --fetch-jwks)"},
		{name: "--help after add-subordinate's arguments", args: []string{"federation", "add-subordinate", "https://leaf.example", "--fetch-jwks", "--help"},
			stdout: "Usage: tongban federation add-subordinate"},
		{name: "federation alone", args: []string{"federation"}, code: 2, stderr: "did you mean tongban federation add-subordinate"},
		{name: "add-subordinate without an entity id", args: []string{"federation", "add-subordinate", "--fetch-jwks"}, code: 2,
			stderr: "missing the entity id"},
		{name: "add-subordinate without keys", args: []string{"federation", "add-subordinate", "https://leaf.example"}, code: 2,
			stderr: "--jwks FILE or --fetch-jwks, one of them"},
		{name: "add-subordinate with both kinds of keys", args: []string{"federation", "add-subordinate", "https://leaf.example", "--jwks", missing, "--fetch-jwks"}, code: 2,
			stderr: "--jwks FILE or --fetch-jwks, one of them"},
		{name: "add-subordinate with an unknown flag", args: []string{"federation", "add-subordinate", "https://leaf.example", "--nope"}, code: 2,
			stderr: "tongban federation add-subordinate: flag provided but not defined: -nope"},
		{name: "add-subordinate with two entity ids", args: []string{"federation", "add-subordinate", "https://a.example", "https://b.example", "--fetch-jwks"}, code: 2,
			stderr: `unexpected argument "https://b.example"`},
		{name: "add-subordinate with no entity id but a word", args: []string{"federation", "add-subordinate", "leaf", "--fetch-jwks"}, code: 2,
			stderr: "has no host"},
		{name: "add-subordinate with --config after its arguments", args: []string{"federation", "add-subordinate", "https://leaf.example", "--fetch-jwks", "--config", missing}, code: 2,
			stderr: "missing.yaml"},
		{name: "add-subordinate with two --config", args: []string{"--config", example, "federation", "add-subordinate", "https://leaf.example", "--fetch-jwks", "--config", missing}, code: 2,
			stderr: "two configuration files"},
		{name: "add-subordinate with no dev server beside it", args: []string{"federation", "add-subordinate", "https://leaf.example", "--fetch-jwks"},
			env: noDevServer, code: 1, stderr: "no dev server is running here"},
		{name: "remove-subordinate without an entity id", args: []string{"federation", "remove-subordinate"}, code: 2, stderr: "Usage: tongban federation remove-subordinate <entity-id>"},
		{name: "list with an argument", args: []string{"federation", "list", "now"}, code: 2, stderr: `tongban federation list: unexpected argument "now"`},
		{name: "list with no dev server beside it", args: []string{"federation", "list"}, env: noDevServer, code: 1, stderr: "no dev server is running here"},
		{name: "list with Redis not answering", args: []string{"federation", "list"}, env: noRedis, code: 1,
			stderr: "tongban federation list: ", notStderr: "pool.go", stderrRows: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(tc.args, tc.env, &stdout, &stderr)
			out, errs := stdout.String(), stderr.String()
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			if !strings.Contains(out, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, out)
			}
			if !strings.Contains(errs, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errs)
			}
			if tc.notStderr != "" && strings.Contains(errs, tc.notStderr) {
				t.Errorf("stderr has %q:\n%s", tc.notStderr, errs)
			}
			if tc.stderrRows != 0 {
				if rows := strings.Count(strings.TrimRight(errs, "\n"), "\n") + 1; rows != tc.stderrRows {
					t.Errorf("stderr has %d lines, want %d:\n%s", rows, tc.stderrRows, errs)
				}
			}
			if tc.code == 0 && errs != "" {
				t.Errorf("a command that succeeded wrote to stderr:\n%s", errs)
			}
		})
	}
}

func TestVersionLineNamesTheRevision(t *testing.T) {
	t.Parallel()
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "1e9cb43"}, {Key: "vcs.time", Value: "2026-12-02T13:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	if got, want := describeBuild(info), "tongban v1.2.0 (1e9cb43, modified, 2026-12-02T13:00:00Z) go1.26.0"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := describeBuild(&debug.BuildInfo{GoVersion: "go1.26.0"}), "tongban (devel) (revision unknown) go1.26.0"; got != want {
		t.Errorf("without VCS: got %q, want %q", got, want)
	}
}
