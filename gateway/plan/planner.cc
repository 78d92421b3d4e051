#include "gateway/plan/planner.h"

#include <algorithm>

#include "gateway/plan/template.h"

namespace songda {
namespace {

const RouteConfig* find_route(const Config& config, const std::string& type, const std::string& role) {
  for (const auto& r : config.routes) {
    if (r.event_type != type) continue;
    if (r.roles.empty() || std::find(r.roles.begin(), r.roles.end(), role) != r.roles.end()) return &r;
  }
  return nullptr;
}

// A delivery record's fixed fields (ids, type, channel, status, times, consent) in its stored JSON.
constexpr std::size_t kRecordOverheadBytes = 512;

}  // namespace

std::string address_for(const Recipient& r, const std::string& channel) {
  if (channel == kChannelInApp) return r.contacts.app_user;
  if (channel == kChannelSms) return r.contacts.mobile;
  if (channel == kChannelWechat) return r.contacts.wechat_openid;
  if (channel == kChannelEmail) return r.contacts.email;
  return {};
}

Result<Plan> plan_event(const CaseEvent& event, const Config& config, const PlanOptions& options) {
  Plan plan;
  bool any_route = false;
  std::size_t params_bytes = 0;
  for (const auto& [k, v] : event.params) params_bytes += k.size() + v.size() + 8;
  for (const auto& recipient : event.recipients) {
    const RouteConfig* route = find_route(config, event.type, recipient.role);
    if (route == nullptr) {
      plan.unreachable.push_back(recipient.id);  // no route for this role: reported, never silently dropped
      continue;
    }
    any_route = true;
    const auto tmpl = config.templates.find(route->template_name);
    if (tmpl == config.templates.end()) {
      return Error::permanent("template_invalid", "route for " + event.type + " names template '" +
                                                      route->template_name + "', which is not configured");
    }
    bool reached = false;
    for (const auto& channel : route->channels) {
      const std::string address = address_for(recipient, channel);
      if (address.empty()) continue;
      reached = true;
      Delivery d;
      d.id = delivery_id(event.event_id, recipient.id, channel);
      d.event_id = event.event_id;
      d.event_type = event.type;
      d.court_id = event.court_id;
      d.court_name = event.court_name;
      d.case_number = event.case_number;
      d.recipient_id = recipient.id;
      d.recipient_role = recipient.role;
      d.recipient_name = recipient.name;
      d.channel = channel;
      d.address = address;
      d.consent_basis = recipient.consent.basis;
      d.template_name = route->template_name;
      d.document = event.document;
      d.urgent = route->urgent || event.urgent;
      d.params = event.params;

      std::map<std::string, std::string> vars = event.params;
      vars["court_name"] = event.court_name;
      vars["case_number"] = event.case_number;
      vars["case_title"] = event.case_title;
      vars["recipient_name"] = recipient.name;
      vars["document_title"] = event.document ? event.document->title : "";
      vars["link"] = options.link_for ? options.link_for(d.id) : "";

      auto title = render_template(route->template_name, tmpl->second.title, vars);
      if (!title.ok()) return title.error();
      const std::string& body_text =
          (channel == kChannelSms && !tmpl->second.sms.empty()) ? tmpl->second.sms : tmpl->second.body;
      auto text = render_template(route->template_name, body_text, vars);
      if (!text.ok()) return text.error();
      d.title = std::move(title.value());
      d.text = std::move(text.value());
      // Counted as each is made, so a plan too large stops within one delivery of the limit.
      plan.planned_bytes += kRecordOverheadBytes + params_bytes + d.title.size() + d.text.size() + d.address.size() +
                            d.recipient_name.size() + d.case_number.size() + d.court_name.size();
      if (plan.planned_bytes > options.max_planned_bytes) {
        return Error::permanent(
            "too_large", "the event's deliveries would take more than " +
                             std::to_string(options.max_planned_bytes / (1024 * 1024)) + " MiB (" +
                             std::to_string(plan.deliveries.size() + 1) + " deliveries so far, each carrying " +
                             std::to_string(params_bytes / 1024) +
                             " KiB of params and its text). Hint: send a long text as the document, or split the "
                             "recipients over several events");
      }
      plan.deliveries.push_back(std::move(d));
    }
    if (!reached) plan.unreachable.push_back(recipient.id);
    // Receipt-driven fallback: a `to` delivery waits on its `from` delivery of the same recipient.
    for (const auto& fb : route->fallback) {
      const std::string from_id = delivery_id(event.event_id, recipient.id, fb.from);
      const std::string to_id = delivery_id(event.event_id, recipient.id, fb.to);
      const bool has_from = std::any_of(plan.deliveries.begin(), plan.deliveries.end(),
                                        [&](const Delivery& x) { return x.id == from_id; });
      for (auto& d : plan.deliveries) {
        if (d.id == to_id && has_from && d.hold_from.empty()) {
          d.hold_from = from_id;
          d.hold_unless = fb.unless;
          d.hold_after_s = fb.after_s;
        }
      }
    }
  }
  if (!any_route) return Error::permanent("no_route", "no route is configured for event type " + event.type);
  if (plan.deliveries.empty()) {
    return Error::permanent("no_reachable_recipient",
                            "no recipient has a contact on the channels routed for " + event.type);
  }
  return plan;
}

}  // namespace songda
