// Package miniprogram keeps the mini-programs a person receives 免申即享 notices in: the
// WeChat or Alipay account of each member app's mini-program they signed in with (a
// binding), and the subscription-message templates they allowed there (subscriptions).
//
// A mini-program cannot receive a device push; the host platform delivers a subscription
// message (订阅消息) instead, and only for a template the person tapped "allow" for. So a
// binding is made from a login code the mini-program got from wx.login or my.getAuthCode, which
// the platform exchanges for the person's id (the WeChat openid, the Alipay user id): an id a
// client sends is never trusted (Register). The mini-program then reports the templates the
// person accepted (Record): a one-time subscription lets one message through and is used up
// by it (each "allow" adds one, up to MaxOneTime); a long-term one (allowed for government
// services, and only for templates configured so) persists. The platform is the judge: a
// subscription reported but never given is refused at send time (WeChat 43101), and delivery
// then drops it.
//
// Delivery reads a person's endpoints for a notification's category (QueueEndpoints): each
// binding whose app has a template for the category and a subscription to it. After a send it
// uses up a one-time subscription (QueueUsed) or drops one the platform refused (Drop).
//
// One platform account belongs to one person: binding it moves it from whoever had it (a
// shared phone, a second Tongban account), taking that person's subscriptions of it along,
// since they were the account's, not the person's.
//
// Redis keys (under the store prefix):
//
//	{p:<pid>}:mp        hash   "b|<kind>|<app>" -> JSON {u: the platform's user id, sealed
//	                           (internal/seal, purpose "<kind>-user"), h: its hash, at: unix s};
//	                           "s|<kind>|<app>|<template>" -> JSON {k: "one_time" | "long_term",
//	                           n: one-time sends left, h: the binding's hash, at: unix s}
//	mpuser:<kind>:<app>:<b64url sha256(user id)>
//	                    string the person the account is bound to
//
// kind is "wechat" or "alipay". Endpoint ids are "s_" and 22 characters of a hash of the
// binding and the template: stable for one subscription, no use for sending.
package miniprogram
