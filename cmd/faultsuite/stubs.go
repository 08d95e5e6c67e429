package main

import "context"

func runMasterKill(ctx context.Context, s *suite, r *result)   {}
func runKillDelivery(ctx context.Context, s *suite, r *result) {}
func runKillBackfill(ctx context.Context, s *suite, r *result) {}
func runApplyFault(ctx context.Context, s *suite, r *result)   {}
