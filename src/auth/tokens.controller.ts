import { Body, Controller, Delete, Get, HttpCode, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiRefusals } from '../common/openapi';
import { IdParam } from '../common/id-param';
import { CurrentPrincipal, RequireRole } from './access.decorators';
import { AuthService } from './auth.service';
import { CreateTokenDto, IssuedTokenDto, ListTokensQuery, TokenDto, toTokenDto } from './dto/token.dto';
import type { Principal } from './principal';

@ApiTags('tokens')
@ApiRefusals()
@Controller('api/v1/tokens')
@RequireRole('admin')
export class TokensController {
  constructor(private readonly auth: AuthService) {}

  @Post()
  @ApiOperation({ summary: 'Issue an API token; its secret is shown once' })
  @ApiCreatedResponse({ type: IssuedTokenDto })
  async issue(@Body() body: CreateTokenDto, @CurrentPrincipal() caller: Principal): Promise<IssuedTokenDto> {
    const expiresAt = body.expiresAt ? new Date(body.expiresAt) : null;
    const { token, secret } = await this.auth.issueToken(body.name, body.role, caller.tokenId, expiresAt);
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
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke an API token; it stops working at once' })
  @ApiOkResponse({ type: TokenDto })
  async revoke(@IdParam('id') id: string): Promise<TokenDto> {
    return toTokenDto(await this.auth.revokeToken(id));
  }
}
