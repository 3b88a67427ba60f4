/* api.h - the handlers of the north API, one per route (routes.c lists them). Each takes a
 * routed, authenticated request and answers it through request.h. */
#ifndef SG_API_H
#define SG_API_H

struct sg_req;

void sg_api_health(struct sg_req *r);
void sg_api_list_sessions(struct sg_req *r);
void sg_api_get_session(struct sg_req *r);
void sg_api_list_events(struct sg_req *r);
void sg_api_create_session(struct sg_req *r);
void sg_api_update_session(struct sg_req *r);
void sg_api_archive_session(struct sg_req *r);
void sg_api_delete_session(struct sg_req *r);
void sg_api_send_events(struct sg_req *r);
void sg_api_list_agents(struct sg_req *r);
void sg_api_get_agent(struct sg_req *r);

/* Shared by the handlers. */
struct sg_key;
struct sg_pubid;
struct sg_route;
/* The route of a backend name among the key's backends, or NULL (a backend this key may
 * not reach is answered like an unknown id, with no backend call). */
const struct sg_route *sg_api_route_of(const struct sg_key *key, const char *backend);
/* The session the path names and its route, or -1 after answering 404: an id that does not
 * decode, or names a backend the key may not reach, is answered like an unknown one. */
int sg_api_session_route(struct sg_req *r, struct sg_pubid *id, const struct sg_route **rt);

#endif
