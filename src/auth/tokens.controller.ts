import { Body, Controller, Delete, Get, HttpCode, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Audited, CallerOrigin } from '../audit/audit.decorators';
import type { Origin } from '../audit/origin';
import { ApiRefusals } from '../common/openapi';
import { IdParam } from '../common/id-param';
import { RequireRole } from './access.decorators';
import { AuthService } from './auth.service';
import { CreateTokenDto, IssuedTokenDto, ListTokensQuery, TokenDto, toTokenDto } from './dto/token.dto';

@ApiTags('tokens')
@ApiRefusals()
@Controller('api/v1/tokens')
@RequireRole('admin')
export class TokensController {
  constructor(private readonly auth: AuthService) {}

  @Post()
  @Audited('token.create', 'token')
  @ApiOperation({ summary: 'Issue an API token; its secret is shown once' })
  @ApiCreatedResponse({ type: IssuedTokenDto })
  async issue(@Body() body: CreateTokenDto, @CallerOrigin() origin: Origin): Promise<IssuedTokenDto> {
    const expiresAt = body.expiresAt ? new Date(body.expiresAt) : null;
    const { token, secret } = await this.auth.issueToken(body.name, body.role, origin, expiresAt);
    return { ...toTokenDto(token), secret };
  }

  @Get()
  @ApiOperation({ summary: 'List API tokens (never their secrets)' })
  @ApiOkResponse({ type: [TokenDto] })
  async list(@Query() query: ListTokensQuery): Promise<TokenDto[]> {
    return (await this.auth.listTokens(query.includeRevoked ?? false)).map(toTokenDto);
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get one API token' })
  @ApiOkResponse({ type: TokenDto })
  async get(@IdParam('id') id: string): Promise<TokenDto> {
    return toTokenDto(await this.auth.getToken(id));
  }

  @Delete(':id')
  @Audited('token.revoke', 'token', 'id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke an API token; it stops working at once' })
  @ApiOkResponse({ type: TokenDto })
  async revoke(@IdParam('id') id: string, @CallerOrigin() origin: Origin): Promise<TokenDto> {
    return toTokenDto(await this.auth.revokeToken(id, origin));
  }
}
