package main

import "context"

func runKillDelivery(ctx context.Context, s *suite, r *result) {}
func runKillBackfill(ctx context.Context, s *suite, r *result) {}
func runApplyFault(ctx context.Context, s *suite, r *result)   {}
